/**
 * The catalog as the shop reads it: products from Directus REST (`/items/products`),
 * seeded by services/directus. Read server-side only, cached briefly in memory so a page
 * view costs no Directus round trip, and normalized defensively (Directus returns
 * decimals as strings and JSON fields as arrays or strings depending on the field type).
 * A row without a price is not in the shop's catalog at all: see `priceOf`.
 */
import { shopEnv } from './env.ts';

export interface Product {
  id: string;
  slug: string;
  title: string;
  category: string;
  tags: string[];
  price: number;
  currency: string;
  image: string;
  stock: number;
  popularity: number;
  description: string;
}

const CACHE_MS = 15_000;

/**
 * Directus, the catalog, could not be read; the message starts `catalog:` and says what to
 * do. Pages and routes catch it (`readCatalog`) and tell the shopper themselves: production
 * Next.js replaces a Server Component's error message before app/error.tsx sees it.
 */
export class CatalogUnavailableError extends Error {
  override name = 'CatalogUnavailableError';
}

/** A catalog read, or the message to show when Directus could not be read; other errors pass. */
export async function readCatalog<T>(
  read: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; message: string }> {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    if (err instanceof CatalogUnavailableError) return { ok: false, message: err.message };
    throw err;
  }
}
let cached: { at: number; products: Product[] } | undefined;

function asString(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

function asNumber(v: unknown, fallback = 0): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : fallback;
}

function asTags(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((t): t is string => typeof t === 'string');
  if (typeof v === 'string' && v.trim() !== '') {
    try {
      return asTags(JSON.parse(v));
    } catch {
      return v
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
    }
  }
  return [];
}

/**
 * The row's price, or undefined when it has none. Directus sends null for a cleared price
 * field (and an import may leave ''): read as 0 that would offer the product for free, so a
 * product without a price is not sold. The same rule as the edge's catalog
 * (packages/edge-worker/src/catalog/source.ts), which leaves such a row out of its cards and
 * recommendations: shop and edge show one catalog.
 */
export function priceOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Maps one Directus row to a Product, or undefined when it lacks an id, a slug or a price. */
export function toProduct(row: Record<string, unknown>): Product | undefined {
  const id = asString(row.id);
  const slug = asString(row.slug);
  const price = priceOf(row.price);
  if (id === '' || slug === '' || price === undefined) return undefined;
  return {
    id,
    slug,
    title: asString(row.title, slug),
    category: asString(row.category, 'other'),
    tags: asTags(row.tags),
    price,
    currency: asString(row.currency, 'EUR'),
    image: asString(row.image, `/images/products/${slug}.svg`),
    stock: asNumber(row.stock),
    popularity: asNumber(row.popularity),
    description: asString(row.description),
  };
}

/** Every product, most popular first. Throws CatalogUnavailableError when Directus cannot be read. */
export async function listProducts(): Promise<Product[]> {
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.products;
  const env = shopEnv();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (env.directusToken) headers.authorization = `Bearer ${env.directusToken}`;
  const url = `${env.directusUrl}/items/products?limit=-1&sort=-popularity`;
  let res: Response;
  try {
    res = await fetch(url, { headers, cache: 'no-store', signal: AbortSignal.timeout(5000) });
  } catch (err) {
    // The fetch error (a socket's address, a stack) goes to the server's log, not to the
    // page every visitor sees: it names nothing about a person.
    console.error(
      JSON.stringify({
        msg: 'catalog.unreachable',
        error: err instanceof Error ? err.name : 'unknown',
        cause: String(err).slice(0, 200),
      }),
    );
    throw new CatalogUnavailableError(
      `catalog: Directus at ${env.directusUrl} is not reachable; start it with ./attune up`,
    );
  }
  if (!res.ok)
    throw new CatalogUnavailableError(`catalog: Directus answered ${res.status} for /items/products`);
  let body: { data?: unknown };
  try {
    body = (await res.json()) as { data?: unknown };
  } catch {
    throw new CatalogUnavailableError(`catalog: Directus answered /items/products with no JSON`);
  }
  const rows = Array.isArray(body.data) ? body.data : [];
  const products = rows
    .map((r) => (r !== null && typeof r === 'object' ? toProduct(r as Record<string, unknown>) : undefined))
    .filter((p): p is Product => p !== undefined)
    .sort((a, b) => b.popularity - a.popularity);
  cached = { at: Date.now(), products };
  return products;
}

export async function getProduct(slug: string): Promise<Product | undefined> {
  return (await listProducts()).find((p) => p.slug === slug);
}

export async function listCategories(): Promise<string[]> {
  return [...new Set((await listProducts()).map((p) => p.category))].sort();
}

export async function productsInCategory(category: string): Promise<Product[]> {
  return (await listProducts()).filter((p) => p.category === category);
}

/** Case-insensitive match on title, category, tags and description. */
export async function searchProducts(query: string): Promise<Product[]> {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 8);
  if (terms.length === 0) return [];
  return (await listProducts()).filter((p) => {
    const hay = `${p.title} ${p.category} ${p.tags.join(' ')} ${p.description}`.toLowerCase();
    return terms.every((t) => hay.includes(t));
  });
}

/** The default recommendations (what everyone sees without personalization): the most popular in stock. */
export async function popularProducts(limit: number, excludeId?: string): Promise<Product[]> {
  return (await listProducts()).filter((p) => p.stock > 0 && p.id !== excludeId).slice(0, limit);
}

export function formatPrice(price: number, currency: string): string {
  return new Intl.NumberFormat('en-GB', { style: 'currency', currency }).format(price);
}
