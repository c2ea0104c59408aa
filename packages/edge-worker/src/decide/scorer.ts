/**
 * The product scorer: for one person, each product's score combines interest affinity
 * (profile scores × the product's category and tags), "viewed next" co-visitation from
 * the person's last viewed products, a recency prior (the categories they just looked
 * at) and a popularity prior; products bought, in the cart, out of stock or on screen
 * are excluded; a diversity cap limits products per category. With no signals at all the
 * popularity prior alone ranks (cold start). Every pick carries a short reason.
 *
 * Cost: one pass over a Float64Array of the catalog plus the postings of the person's
 * interest keys, and a bounded heap — no sort of the catalog, no allocation per product.
 */
import type { CatalogIndex } from '../catalog/catalog-index.ts';
import type { Product } from '../catalog/types.ts';

/** The weights of each signal; affinity and co-visitation are normalized to 0..1 before weighting. */
export const SCORE_WEIGHTS = {
  affinity: 1,
  /** A tag match counts this much of a category match. */
  tagShare: 0.5,
  covisit: 1.5,
  recency: 0.5,
  popularity: 0.3,
} as const;

/** "Viewed next" counts from one product: products viewed right after it, with counts. */
export type CovisitCounts = Map<string, { to: string; count: number }[]>;

export interface ScoreInput {
  /** Decayed interest scores, keys `category:<c>` / `tag:<t>`. */
  interests: Record<string, number>;
  /** Product ids the person viewed, newest first. */
  recentViews: string[];
  cart: string[];
  purchased: string[];
  covisits?: CovisitCounts;
  /** The product on screen (never recommended to itself; its co-visits count most). */
  currentProductId?: string;
  limit: number;
  /** At most this many products per category (0 = no cap). */
  maxPerCategory: number;
  /** Restrict candidates to these categories/tags (e.g. a trigger's accessories). */
  restrictTo?: { categories?: string[]; tags?: string[] };
}

export interface ScoredProduct {
  product: Product;
  score: number;
  reason: string;
}

/** How many recent views feed recency and co-visitation. */
const RECENT_VIEWS_USED = 5;

/** Ranks the catalog for one person and returns the top `limit` products with reasons. */
export function scoreCatalog(index: CatalogIndex, input: ScoreInput): ScoredProduct[] {
  const n = index.products.length;
  const limit = Math.max(0, Math.min(input.limit, 100));
  if (n === 0 || limit === 0) return [];
  const scores = new Float64Array(n);
  const pop = index.popularity;
  for (let i = 0; i < n; i++) scores[i] = SCORE_WEIGHTS.popularity * (pop[i] ?? 0);

  const maxInterest = maxPositive(input.interests);
  if (maxInterest > 0) {
    for (const key in input.interests) {
      const value = input.interests[key] ?? 0;
      if (!(value > 0)) continue;
      const list = index.postings.get(key);
      if (!list) continue;
      const w =
        (SCORE_WEIGHTS.affinity * value * (key.startsWith('tag:') ? SCORE_WEIGHTS.tagShare : 1)) /
        maxInterest;
      for (let j = 0; j < list.length; j++) {
        const i = list[j] as number;
        scores[i] = (scores[i] ?? 0) + w;
      }
    }
  }

  const sources = viewSources(input);
  for (const { productId, weight } of sources) {
    const i = index.indexById.get(productId);
    if (i === undefined) continue;
    const product = index.products[i];
    const list = product ? index.postings.get(`category:${product.category}`) : undefined;
    if (list) {
      const w = SCORE_WEIGHTS.recency * weight;
      for (let j = 0; j < list.length; j++) {
        const k = list[j] as number;
        scores[k] = (scores[k] ?? 0) + w;
      }
    }
    const next = input.covisits?.get(productId);
    if (next && next.length > 0) {
      const maxCount = Math.max(...next.map((c) => c.count));
      for (const { to, count } of next) {
        const k = index.indexById.get(to);
        if (k !== undefined && maxCount > 0)
          scores[k] = (scores[k] ?? 0) + (SCORE_WEIGHTS.covisit * weight * count) / maxCount;
      }
    }
  }

  const excluded = new Set<number>();
  for (const id of [...input.cart, ...input.purchased]) {
    const i = index.indexById.get(id);
    if (i !== undefined) excluded.add(i);
  }
  if (input.currentProductId !== undefined) {
    const i = index.indexById.get(input.currentProductId);
    if (i !== undefined) excluded.add(i);
  }
  const eligible = restrictionMask(index, input.restrictTo);

  const cap = input.maxPerCategory > 0 ? input.maxPerCategory : Number.POSITIVE_INFINITY;
  let poolSize = Number.isFinite(cap) ? limit * 4 + 16 : limit;
  for (;;) {
    const pool = topK(scores, index, excluded, eligible, poolSize);
    const picked: number[] = [];
    const perCategory = new Map<number, number>();
    for (const i of pool) {
      const cat = index.categoryOf[i] ?? 0;
      const used = perCategory.get(cat) ?? 0;
      if (used >= cap) continue;
      perCategory.set(cat, used + 1);
      picked.push(i);
      if (picked.length === limit) break;
    }
    // A pool exhausted by the diversity cap may hide eligible products: widen once to the whole catalog.
    if (picked.length === limit || pool.length < poolSize || poolSize >= n) {
      return picked.map((i) => ({
        product: index.products[i] as Product,
        score: scores[i] ?? 0,
        reason: explain(index, input, i, sources, maxInterest),
      }));
    }
    poolSize = n;
  }
}

/** The recently viewed products that drive recency and co-visitation, with a weight by rank. */
function viewSources(input: ScoreInput): { productId: string; weight: number }[] {
  const out: { productId: string; weight: number }[] = [];
  const seen = new Set<string>();
  if (input.currentProductId !== undefined) {
    out.push({ productId: input.currentProductId, weight: 1.5 });
    seen.add(input.currentProductId);
  }
  for (const id of input.recentViews) {
    if (out.length >= RECENT_VIEWS_USED) break;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ productId: id, weight: 1 / (out.length + 1) });
  }
  return out;
}

function maxPositive(values: Record<string, number>): number {
  let max = 0;
  for (const key in values) {
    const v = values[key] ?? 0;
    if (v > max && Number.isFinite(v)) max = v;
  }
  return max;
}

function restrictionMask(index: CatalogIndex, restrictTo: ScoreInput['restrictTo']): Uint8Array | undefined {
  if (!restrictTo) return undefined;
  const mask = new Uint8Array(index.products.length);
  const keys = [
    ...(restrictTo.categories ?? []).map((c) => `category:${c}`),
    ...(restrictTo.tags ?? []).map((t) => `tag:${t}`),
  ];
  for (const key of keys) {
    const list = index.postings.get(key);
    if (list) for (let j = 0; j < list.length; j++) mask[list[j] as number] = 1;
  }
  return mask;
}

/** The `k` best eligible products, best first (ties: catalog order), with a bounded min-heap. */
function topK(
  scores: Float64Array,
  index: CatalogIndex,
  excluded: Set<number>,
  eligible: Uint8Array | undefined,
  k: number,
): number[] {
  const heap: number[] = [];
  // "a is worse than b": lower score, or equal score and later in the catalog.
  const worse = (a: number, b: number) => {
    const sa = scores[a] ?? 0;
    const sb = scores[b] ?? 0;
    return sa < sb || (sa === sb && a > b);
  };
  const siftUp = (pos: number) => {
    let p = pos;
    while (p > 0) {
      const parent = (p - 1) >> 1;
      const hp = heap[p] as number;
      const hparent = heap[parent] as number;
      if (!worse(hp, hparent)) break;
      heap[p] = hparent;
      heap[parent] = hp;
      p = parent;
    }
  };
  const siftDown = () => {
    let p = 0;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let m = p;
      if (l < heap.length && worse(heap[l] as number, heap[m] as number)) m = l;
      if (r < heap.length && worse(heap[r] as number, heap[m] as number)) m = r;
      if (m === p) return;
      const t = heap[p] as number;
      heap[p] = heap[m] as number;
      heap[m] = t;
      p = m;
    }
  };
  const available = index.available;
  const n = scores.length;
  for (let i = 0; i < n; i++) {
    if (available[i] !== 1 || (eligible && eligible[i] !== 1) || excluded.has(i)) continue;
    if (heap.length < k) {
      heap.push(i);
      siftUp(heap.length - 1);
    } else if (worse(heap[0] as number, i)) {
      heap[0] = i;
      siftDown();
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}

/** The strongest signal behind one pick, in a few words. */
function explain(
  index: CatalogIndex,
  input: ScoreInput,
  i: number,
  sources: { productId: string; weight: number }[],
  maxInterest: number,
): string {
  const product = index.products[i] as Product;
  let best = SCORE_WEIGHTS.popularity * (index.popularity[i] ?? 0);
  let reason = 'popular right now';
  const consider = (value: number, text: string) => {
    if (value > best) {
      best = value;
      reason = text;
    }
  };
  if (maxInterest > 0) {
    const cat = input.interests[`category:${product.category}`] ?? 0;
    if (cat > 0)
      consider((SCORE_WEIGHTS.affinity * cat) / maxInterest, `because you like ${product.category}`);
    for (const tag of product.tags) {
      const v = input.interests[`tag:${tag}`] ?? 0;
      if (v > 0)
        consider(
          (SCORE_WEIGHTS.affinity * SCORE_WEIGHTS.tagShare * v) / maxInterest,
          `matches your interest in ${tag}`,
        );
    }
  }
  for (const { productId, weight } of sources) {
    const j = index.indexById.get(productId);
    const seen = j === undefined ? undefined : index.products[j];
    if (!seen) continue;
    if (seen.category === product.category)
      consider(SCORE_WEIGHTS.recency * weight, `similar to ${seen.title}, which you viewed`);
    const next = input.covisits?.get(productId);
    const hit = next?.find((c) => c.to === product.id);
    if (next && hit) {
      const maxCount = Math.max(...next.map((c) => c.count));
      consider(
        (SCORE_WEIGHTS.covisit * weight * hit.count) / maxCount,
        `people who viewed ${seen.title} viewed this next`,
      );
    }
  }
  return reason;
}

/** The baseline the benchmarks compare against: the most popular available products. */
export function popularityPick(index: CatalogIndex, limit: number): Product[] {
  const out: Product[] = [];
  for (let j = 0; j < index.byPopularity.length && out.length < limit; j++) {
    const p = index.products[index.byPopularity[j] as number];
    if (p) out.push(p);
  }
  return out;
}
