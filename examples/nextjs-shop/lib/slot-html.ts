/**
 * Default content of the personalization slots, as HTML strings. Slots are rendered with
 * `dangerouslySetInnerHTML` on purpose: the Worker replaces their inner HTML in the
 * response, and React never re-hydrates inner HTML, so the personalized content the
 * Worker streamed stays on screen (no flicker back to the defaults).
 */
import { formatPrice, type Product } from './catalog.ts';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function productCardsHtml(products: readonly Product[]): string {
  const cards = products
    .map(
      (p) =>
        `<li class="card" data-product-id="${escapeHtml(p.id)}" data-category="${escapeHtml(p.category)}">` +
        `<a href="/products/${encodeURIComponent(p.slug)}">` +
        `<img src="${escapeHtml(p.image)}" alt="" width="160" height="120" loading="lazy"/>` +
        `<span class="card-title">${escapeHtml(p.title)}</span>` +
        `<span class="card-price">${escapeHtml(formatPrice(p.price, p.currency))}</span></a></li>`,
    )
    .join('');
  return `<ul class="cards">${cards}</ul>`;
}

export function recommendationsHtml(title: string, products: readonly Product[]): string {
  return `<h2>${escapeHtml(title)}</h2>${productCardsHtml(products)}`;
}

export const DEFAULT_HERO_HTML =
  '<div class="hero-banner"><h1>Gear for every season</h1>' +
  '<p>Outdoor, home, kitchen and more — picked for you as you browse.</p>' +
  '<a class="button primary" href="/search?q=new">Shop new arrivals</a></div>';

export const DEFAULT_PROMO_HTML =
  '<div class="promo-box"><b>Free returns</b> on every order, for 30 days.</div>';
