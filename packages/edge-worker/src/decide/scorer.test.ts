import { describe, expect, it } from 'vitest';
import { buildCatalogIndex } from '../catalog/catalog-index.ts';
import { FIXTURE_CATALOG, generateCatalog } from '../catalog/fixtures/catalog.ts';
import { SCORE_WEIGHTS, type ScoreInput, scoreCatalog } from './scorer.ts';

const index = buildCatalogIndex(FIXTURE_CATALOG);
const none: ScoreInput = {
  interests: {},
  recentViews: [],
  cart: [],
  purchased: [],
  limit: 5,
  maxPerCategory: 0,
};
const ids = (input: Partial<ScoreInput>) =>
  scoreCatalog(index, { ...none, ...input }).map((s) => s.product.id);

describe('scoreCatalog', () => {
  it('adds interest affinity to the popularity prior, normalized to the strongest interest', () => {
    const [top] = scoreCatalog(index, {
      ...none,
      interests: { 'category:camping': 8, 'tag:warm': 4 },
      limit: 1,
    });
    // Sleeping bag: camping (8/8) + warm tag (4/8 × tagShare) + 0.35 popularity.
    expect(top?.product.id).toBe('sleeping-bag');
    expect(top?.score).toBeCloseTo(
      SCORE_WEIGHTS.affinity * 1 +
        SCORE_WEIGHTS.affinity * SCORE_WEIGHTS.tagShare * 0.5 +
        SCORE_WEIGHTS.popularity * 0.35,
      10,
    );
    expect(top?.reason).toBe('because you like camping');
  });

  it('orders products by interest before popularity', () => {
    const ranked = ids({ interests: { 'category:coffee': 3 }, limit: 4 });
    expect(ranked).toEqual(['espresso-beans', 'filter-beans', 'grinder', 'moka-pot']);
  });

  it('ranks "viewed next" products from what the person just viewed', () => {
    const covisits = new Map([
      [
        'trail-jacket',
        [
          { to: 'gaiters', count: 40 },
          { to: 'camp-stove', count: 10 },
        ],
      ],
    ]);
    const scored = scoreCatalog(index, { ...none, recentViews: ['trail-jacket'], covisits, limit: 3 });
    expect(scored[0]?.product.id).toBe('gaiters');
    expect(scored[0]?.reason).toBe('people who viewed Trail Jacket viewed this next');
  });

  it('boosts the category of recent views, newest most', () => {
    const ranked = ids({ recentViews: ['grinder', 'tent-2p'], limit: 2 });
    expect(ranked).toEqual(['espresso-beans', 'filter-beans']);
    const [first] = scoreCatalog(index, { ...none, recentViews: ['grinder'], limit: 1 });
    expect(first?.reason).toBe('similar to Burr Grinder, which you viewed');
  });

  it('gives a tag-only match a tag reason', () => {
    const [first] = scoreCatalog(index, { ...none, interests: { 'tag:electronics': 1 }, limit: 1 });
    expect(first?.product.id).toBe('headlamp');
    expect(first?.reason).toBe('matches your interest in electronics');
  });
});

describe('exclusions and diversity', () => {
  it('never recommends what is bought, in the cart, out of stock or on screen', () => {
    const ranked = ids({
      interests: { 'category:outdoor': 5 },
      cart: ['trail-jacket'],
      purchased: ['hiking-boots'],
      currentProductId: 'rain-shell',
      limit: 20,
    });
    expect(ranked).not.toContain('trail-jacket');
    expect(ranked).not.toContain('hiking-boots');
    expect(ranked).not.toContain('rain-shell');
    // The parka is the most popular outdoor product but has no stock.
    expect(ranked).not.toContain('sold-out-parka');
    expect(ranked.slice(0, 2)).toEqual(['day-pack', 'trekking-poles']);
  });

  it('caps products per category, filling from the next best categories', () => {
    const ranked = scoreCatalog(index, {
      ...none,
      interests: { 'category:coffee': 5 },
      limit: 4,
      maxPerCategory: 2,
    });
    const perCategory = new Map<string, number>();
    for (const s of ranked)
      perCategory.set(s.product.category, (perCategory.get(s.product.category) ?? 0) + 1);
    expect(ranked).toHaveLength(4);
    expect(perCategory.get('coffee')).toBe(2);
    expect([...perCategory.values()].every((count) => count <= 2)).toBe(true);
  });

  it('keeps the cap at 10,000 products and widens the pool when the cap exhausts it', () => {
    const big = buildCatalogIndex(generateCatalog(10_000));
    const ranked = scoreCatalog(big, {
      ...none,
      interests: { 'category:cat-3': 10 },
      limit: 12,
      maxPerCategory: 1,
    });
    expect(ranked).toHaveLength(12);
    expect(new Set(ranked.map((s) => s.product.category)).size).toBe(12);
    expect(ranked[0]?.product.category).toBe('cat-3');
  });

  it('restricts candidates to a trigger’s accessory categories', () => {
    const ranked = ids({ restrictTo: { categories: ['outdoor-accessories'] }, limit: 3 });
    expect(ranked).toEqual(['wool-socks', 'headlamp', 'water-filter']);
  });

  it('needs both a named category and a named tag when a rule names both', () => {
    // Outdoor accessories tagged "boots": socks and gaiters, not the headlamp (no tag)
    // and not every product that merely carries the tag somewhere else.
    const ranked = ids({ restrictTo: { categories: ['outdoor-accessories'], tags: ['boots'] }, limit: 5 });
    expect(ranked).toEqual(['wool-socks', 'gaiters']);
  });
});

describe('cold start', () => {
  it('ranks by popularity alone, in stock only, with a popularity reason', () => {
    const scored = scoreCatalog(index, { ...none, limit: 3 });
    expect(scored.map((s) => s.product.id)).toEqual(['espresso-beans', 'filter-beans', 'trail-jacket']);
    expect(scored.every((s) => s.reason === 'popular right now')).toBe(true);
  });

  it('ignores interests and views of products the catalog does not know', () => {
    expect(ids({ interests: { 'category:unknown': 9 }, recentViews: ['gone'], limit: 3 })).toEqual(
      ids({ limit: 3 }),
    );
  });

  it('matches a full sort of the 10,000-product catalog', () => {
    const big = buildCatalogIndex(generateCatalog(10_000));
    const input: ScoreInput = { ...none, interests: { 'category:cat-7': 4, 'tag:tag-12': 2 }, limit: 10 };
    const fast = scoreCatalog(big, input).map((s) => s.product.id);
    const slow = big.products
      .map((p, i) => ({
        p,
        i,
        s:
          SCORE_WEIGHTS.popularity * (big.popularity[i] ?? 0) +
          (p.category === 'cat-7' ? 1 : 0) +
          (p.tags.includes('tag-12') ? 0.5 * 0.5 : 0),
      }))
      .filter(({ p }) => p.stock > 0)
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .slice(0, 10)
      .map(({ p }) => p.id);
    expect(fast).toEqual(slow);
  });
});
