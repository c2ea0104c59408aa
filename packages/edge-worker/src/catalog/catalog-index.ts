/**
 * Precomputed indexes over a catalog snapshot, built once per catalog version per
 * isolate, so a decision touches only the postings of the person's interests instead of
 * walking every product: dense product numbering, postings per interest key
 * (`category:<c>`, `tag:<t>`), a popularity array and a popularity-ordered list.
 */
import type { CatalogSnapshot } from './fixtures/catalog.ts';
import type { Product, SlotVariant, TriggerRule } from './types.ts';

export interface CatalogIndex {
  version: string;
  products: Product[];
  /** Product id → dense index into `products`. */
  indexById: Map<string, number>;
  /** Product slug → dense index (the edge proxy recognizes product pages by slug). */
  indexBySlug: Map<string, number>;
  /** Interest key → dense indexes of the products it describes. */
  postings: Map<string, Uint32Array>;
  /** Popularity per dense index (0..1). */
  popularity: Float64Array;
  /** Whether a product can be recommended (in stock). */
  available: Uint8Array;
  /** Dense indexes of available products, most popular first. */
  byPopularity: Uint32Array;
  /** Dense category number per product, for the diversity cap. */
  categoryOf: Uint32Array;
  /** How many distinct categories (`categoryOf` values are 0..categoryCount-1). */
  categoryCount: number;
  slotContent: Map<string, SlotVariant[]>;
  triggerRules: TriggerRule[];
}

/** The interest keys a product carries, in the profile's naming. */
export function interestKeysOf(product: Product): { category: string; tags: string[] } {
  return { category: `category:${product.category}`, tags: product.tags.map((t) => `tag:${t}`) };
}

/** Builds the indexes; O(products × tags), done once per catalog version. */
export function buildCatalogIndex(snapshot: CatalogSnapshot): CatalogIndex {
  const { products } = snapshot;
  const n = products.length;
  const indexById = new Map<string, number>();
  const indexBySlug = new Map<string, number>();
  const postingLists = new Map<string, number[]>();
  const popularity = new Float64Array(n);
  const available = new Uint8Array(n);
  const categoryOf = new Uint32Array(n);
  const categoryNumbers = new Map<string, number>();
  const add = (key: string, i: number) => {
    const list = postingLists.get(key);
    if (list) list.push(i);
    else postingLists.set(key, [i]);
  };
  products.forEach((p, i) => {
    indexById.set(p.id, i);
    indexBySlug.set(p.slug, i);
    const pop = Number.isFinite(p.popularity) ? p.popularity : 0;
    popularity[i] = Math.min(1, Math.max(0, pop));
    available[i] = p.stock > 0 ? 1 : 0;
    let cat = categoryNumbers.get(p.category);
    if (cat === undefined) {
      cat = categoryNumbers.size;
      categoryNumbers.set(p.category, cat);
    }
    categoryOf[i] = cat;
    const keys = interestKeysOf(p);
    add(keys.category, i);
    for (const t of new Set(keys.tags)) add(t, i);
  });
  const postings = new Map<string, Uint32Array>();
  for (const [key, list] of postingLists) postings.set(key, Uint32Array.from(list));
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (available[i] === 1) order.push(i);
  order.sort((a, b) => (popularity[b] ?? 0) - (popularity[a] ?? 0) || a - b);
  const slotContent = new Map<string, SlotVariant[]>();
  for (const v of snapshot.slotContent) {
    const list = slotContent.get(v.slot);
    if (list) list.push(v);
    else slotContent.set(v.slot, [v]);
  }
  return {
    version: snapshot.version,
    products,
    indexById,
    indexBySlug,
    postings,
    popularity,
    available,
    byPopularity: Uint32Array.from(order),
    categoryOf,
    categoryCount: categoryNumbers.size,
    slotContent,
    triggerRules: snapshot.triggerRules,
  };
}
