/**
 * Renders a slot decision as HTML for the edge rewriter, in the shop's markup (cards for
 * products, a banner or promo box). Every value from the catalog or Directus is escaped:
 * marketers edit that content, and it lands inside someone's page.
 */
import type { ProductCard, SlotDecision } from '@attune/shared-schema';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * Whether a URL holds ASCII whitespace, a control character or a backslash: browsers drop
 * tabs and newlines from URLs and read `\` as `/`, so `/\t/host` and `/\host` become
 * `//host`, another site.
 */
function hasUnsafeCharacter(url: string): boolean {
  for (let i = 0; i < url.length; i++) {
    const code = url.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f || code === 0x5c) return true;
  }
  return false;
}

/**
 * Only paths on the shop's own origin (`/…`, never `//…`) and absolute http(s) URLs, for
 * links and images; anything else (javascript:, data:, a path a browser would read as
 * another host) becomes inert.
 */
export function safeUrl(url: string | undefined): string {
  if (url === undefined) return '';
  const trimmed = url.trim();
  if (hasUnsafeCharacter(trimmed)) return '';
  if (trimmed.startsWith('/')) return trimmed.startsWith('//') ? '' : trimmed;
  return /^https?:\/\/[^/]/i.test(trimmed) ? trimmed : '';
}

/**
 * A card's picture: the product's own image, or none. An empty `src` showed a broken image,
 * and the Worker cannot know where a shop keeps a stand-in picture.
 */
function cardImage(p: ProductCard): string {
  const src = safeUrl(p.image);
  return src ? `<img src="${escapeHtml(src)}" alt="" width="160" height="120" loading="lazy"/>` : '';
}

const money = new Map<string, Intl.NumberFormat>();
function formatPrice(price: number, currency: string): string {
  let format = money.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat('en', { style: 'currency', currency });
    } catch {
      format = new Intl.NumberFormat('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    money.set(currency, format);
  }
  return format.format(price);
}

/**
 * The inner HTML of a slot for a decision, or null when it has nothing to show: a
 * recommendations decision without products (an empty catalog, every candidate excluded)
 * leaves the slot's default content rather than an empty list under a heading.
 */
export function renderDecision(d: SlotDecision): string | null {
  if (d.kind === 'recommendations') {
    if (d.items === undefined || d.items.length === 0) return null;
    const cards = d.items
      .map(
        (p) =>
          `<li class="card" data-product-id="${escapeHtml(p.id)}" data-category="${escapeHtml(p.category)}">` +
          `<a href="/products/${encodeURIComponent(p.slug)}">` +
          cardImage(p) +
          `<span class="card-title">${escapeHtml(p.title)}</span>` +
          `<span class="card-price">${escapeHtml(formatPrice(p.price, p.currency))}</span>` +
          `<small class="card-reason">${escapeHtml(p.reason)}</small></a></li>`,
      )
      .join('');
    return `<h2>${escapeHtml(d.title ?? 'Recommended')}</h2><ul class="cards">${cards}</ul>`;
  }
  const href = safeUrl(d.href);
  const image = safeUrl(d.image);
  if (d.kind === 'promo') {
    const code =
      d.promoCode !== undefined
        ? ` <span class="promo-code">Code <b>${escapeHtml(d.promoCode)}</b></span>`
        : '';
    return `<div class="promo-box"><b>${escapeHtml(d.title ?? '')}</b> ${escapeHtml(d.body ?? '')}${code}</div>`;
  }
  const heading = d.slot === 'hero' ? 'h1' : 'h2';
  return (
    `<div class="hero-banner">` +
    (image ? `<img src="${escapeHtml(image)}" alt=""/>` : '') +
    `<${heading}>${escapeHtml(d.title ?? '')}</${heading}><p>${escapeHtml(d.body ?? '')}</p>` +
    (href ? `<a class="button primary" href="${escapeHtml(href)}">Take a look</a>` : '') +
    `</div>`
  );
}
