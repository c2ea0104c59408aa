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
  const { scores, mask, prior } = scratchFor(index);
  scores.set(prior);

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
        scores[i] = (scores[i] as number) + w;
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
        scores[k] = (scores[k] as number) + w;
      }
    }
    const next = input.covisits?.get(productId);
    if (next && next.length > 0) {
      const maxCount = Math.max(...next.map((c) => c.count));
      for (const { to, count } of next) {
        const k = index.indexById.get(to);
        if (k !== undefined && maxCount > 0)
          scores[k] = (scores[k] as number) + (SCORE_WEIGHTS.covisit * weight * count) / maxCount;
      }
    }
  }

  // Candidates: in stock, within the restriction, not bought, not in the cart, not on screen.
  if (input.restrictTo) {
    // A product qualifies when it is in one of the categories (if any are named) AND
    // carries one of the tags (if any are named): "outdoor" + "accessory" means outdoor
    // accessories, not every outdoor product plus every accessory.
    mask.set(index.available);
    const groups = [
      (input.restrictTo.categories ?? []).map((c) => `category:${c}`),
      (input.restrictTo.tags ?? []).map((t) => `tag:${t}`),
    ].filter((keys) => keys.length > 0);
    for (const keys of groups) {
      const hit = new Uint8Array(n);
      for (const key of keys) {
        const list = index.postings.get(key);
        if (list) for (let j = 0; j < list.length; j++) hit[list[j] as number] = 1;
      }
      for (let i = 0; i < n; i++) mask[i] = (mask[i] as number) & (hit[i] as number);
    }
  } else mask.set(index.available);
  for (const id of [...input.cart, ...input.purchased]) {
    const i = index.indexById.get(id);
    if (i !== undefined) mask[i] = 0;
  }
  if (input.currentProductId !== undefined) {
    const i = index.indexById.get(input.currentProductId);
    if (i !== undefined) mask[i] = 0;
  }

  const picked =
    input.maxPerCategory > 0
      ? topPerCategory(scores, mask, index, limit, input.maxPerCategory)
      : topK(scores, mask, limit);
  return picked.map((i) => ({
    product: index.products[i] as Product,
    score: scores[i] as number,
    reason: explain(index, input, i, sources, maxInterest),
  }));
}

/** Per-catalog buffers reused between decisions (scoring is synchronous, so never shared mid-use). */
interface Scratch {
  scores: Float64Array;
  mask: Uint8Array;
  /** The popularity prior, pre-weighted: every decision starts from a copy of it. */
  prior: Float64Array;
}
const scratch = new WeakMap<CatalogIndex, Scratch>();
function scratchFor(index: CatalogIndex): Scratch {
  let s = scratch.get(index);
  if (!s) {
    const n = index.products.length;
    const prior = new Float64Array(n);
    for (let i = 0; i < n; i++) prior[i] = SCORE_WEIGHTS.popularity * (index.popularity[i] as number);
    s = { scores: new Float64Array(n), mask: new Uint8Array(n), prior };
    scratch.set(index, s);
  }
  return s;
}

/** Whether product a ranks before product b: higher score, then catalog order (deterministic ties). */
function before(scores: Float64Array, a: number, b: number): boolean {
  const sa = scores[a] as number;
  const sb = scores[b] as number;
  return sa > sb || (sa === sb && a < b);
}

/**
 * The best `limit` candidates with at most `cap` per category — exactly what a greedy pass
 * over the fully sorted catalog would pick, without sorting it: one pass keeps each
 * category's best `cap`, then the few survivors are sorted.
 */
function topPerCategory(
  scores: Float64Array,
  mask: Uint8Array,
  index: CatalogIndex,
  limit: number,
  cap: number,
): number[] {
  const width = Math.min(cap, limit);
  const best = new Int32Array(index.categoryCount * width).fill(-1);
  const filled = new Uint8Array(index.categoryCount);
  const n = scores.length;
  const categoryOf = index.categoryOf;
  for (let i = 0; i < n; i++) {
    if (mask[i] !== 1) continue;
    const cat = categoryOf[i] as number;
    const base = cat * width;
    let count = filled[cat] as number;
    if (count === width) {
      if (!before(scores, i, best[base + width - 1] as number)) continue;
      count--;
    } else filled[cat] = count + 1;
    // Insertion into the category's short sorted list.
    let pos = base + count;
    while (pos > base && before(scores, i, best[pos - 1] as number)) {
      best[pos] = best[pos - 1] as number;
      pos--;
    }
    best[pos] = i;
  }
  const survivors: number[] = [];
  for (let k = 0; k < best.length; k++) if ((best[k] as number) >= 0) survivors.push(best[k] as number);
  survivors.sort((a, b) => (before(scores, a, b) ? -1 : 1));
  return survivors.slice(0, limit);
}

/** The best `k` candidates, best first, with a bounded min-heap. */
function topK(scores: Float64Array, mask: Uint8Array, k: number): number[] {
  const heap: number[] = [];
  const worse = (a: number, b: number) => before(scores, b, a);
  const n = scores.length;
  for (let i = 0; i < n; i++) {
    if (mask[i] !== 1) continue;
    if (heap.length < k) {
      heap.push(i);
      let p = heap.length - 1;
      while (p > 0) {
        const parent = (p - 1) >> 1;
        if (!worse(heap[p] as number, heap[parent] as number)) break;
        const t = heap[p] as number;
        heap[p] = heap[parent] as number;
        heap[parent] = t;
        p = parent;
      }
    } else if (before(scores, i, heap[0] as number)) {
      heap[0] = i;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let m = p;
        if (l < heap.length && worse(heap[l] as number, heap[m] as number)) m = l;
        if (r < heap.length && worse(heap[r] as number, heap[m] as number)) m = r;
        if (m === p) break;
        const t = heap[p] as number;
        heap[p] = heap[m] as number;
        heap[m] = t;
        p = m;
      }
    }
  }
  return heap.sort((a, b) => (before(scores, a, b) ? -1 : 1));
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
