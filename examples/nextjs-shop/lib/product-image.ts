/**
 * Product images as SVG, drawn from the slug: a colour per category-ish hash and the
 * product's initials. No image host, no files to ship, and every seeded product has one.
 */
import { escapeHtml } from './slot-html.ts';

const PALETTE = ['#2f6f4f', '#345995', '#b5651d', '#7b2d8b', '#a23b3b', '#3b7a8c', '#6b6b2f', '#8c5a3b'];

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function productSvg(slug: string): string {
  const words = slug.split('-').filter(Boolean);
  const initials = escapeHtml(
    words
      .slice(0, 2)
      .map((w) => w[0]?.toUpperCase() ?? '')
      .join(''),
  );
  const label = escapeHtml(words.join(' ').slice(0, 28));
  const bg = PALETTE[hash(slug) % PALETTE.length] ?? '#345995';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360" viewBox="0 0 480 360">` +
    `<rect width="480" height="360" fill="${bg}"/>` +
    `<circle cx="240" cy="160" r="90" fill="#ffffff" fill-opacity="0.18"/>` +
    `<text x="240" y="190" font-family="system-ui,sans-serif" font-size="84" font-weight="700" fill="#fff" text-anchor="middle">${initials}</text>` +
    `<text x="240" y="320" font-family="system-ui,sans-serif" font-size="24" fill="#fff" text-anchor="middle">${label}</text>` +
    `</svg>`
  );
}

/** A wide banner: a mountain-ish skyline in the banner's colour. */
export function bannerSvg(name: string): string {
  const bg = PALETTE[hash(name) % PALETTE.length] ?? '#2f6f4f';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="300" viewBox="0 0 1200 300">` +
    `<rect width="1200" height="300" fill="${bg}"/>` +
    `<path d="M0 300 L220 120 L380 230 L560 60 L760 220 L900 130 L1200 300 Z" fill="#fff" fill-opacity="0.2"/>` +
    `<circle cx="1030" cy="80" r="40" fill="#fff" fill-opacity="0.35"/>` +
    `</svg>`
  );
}
