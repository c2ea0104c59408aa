import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { READ_GIVEN_UP_MS } from '../kv/index.ts';
import { FIXTURE_CATALOG } from './fixtures/catalog.ts';
import {
  CATALOG_RECHECK_MS,
  CATALOG_VERSION_KEY,
  getCatalog,
  invalidateCatalog,
  putCatalogSnapshot,
} from './index.ts';
import {
  loadCatalogFromDirectus,
  parseProducts,
  parseSlotContent,
  parseTriggerRules,
  type SkippedRow,
} from './source.ts';

/** The Worker's env pointed at the fixture Directus (served by the fixture origin Worker). */
const withDirectus = { ...env, DIRECTUS_URL: 'http://directus.fixture.test/' };
const directusReads = async () =>
  (await (await fetch('http://directus.fixture.test/__reads')).json<{ reads: number }>()).reads;
/** Requests that reached Directus, failed ones included. */
const directusAttempts = async () =>
  (await (await fetch('http://directus.fixture.test/__reads')).json<{ attempts: number }>()).attempts;

describe('catalog source (Directus REST)', () => {
  it('maps rows to the catalog types and names the rows it had to skip', async () => {
    const { snapshot, skipped } = await loadCatalogFromDirectus(withDirectus, 'v-test');
    expect(snapshot.products.map((p) => p.id)).toEqual(['d-jacket', 'd-socks']);
    expect(snapshot.products[0]).toMatchObject({ price: 120.5, tags: ['jacket', 'waterproof'], stock: 4 });
    expect(snapshot.products[1]?.image).toBe('');
    expect(skipped).toEqual([
      { collection: 'products', id: 'broken', problem: expect.stringContaining('price') },
    ]);
    expect(snapshot.slotContent[0]).toMatchObject({ id: 'hero-directus', isDefault: true });
    expect(snapshot.triggerRules[0]).toMatchObject({
      when: { category: 'outdoor' },
      promo: { capPerPerson: 1 },
    });
  });

  it('reads a null in a nullable column as the field left empty, instead of skipping the row', () => {
    // Directus sends null for an empty nullable column; `.default()` alone covers only a missing field.
    const skipped: SkippedRow[] = [];
    const [product] = parseProducts(
      [{ id: 'p1', slug: 'p1', title: 'P', category: 'c', price: 1, stock: 1, currency: null }],
      skipped,
    );
    const [variant] = parseSlotContent(
      [{ id: 'v1', slot: 'hero', kind: 'banner', title: 'T', isDefault: null, priority: null }],
      skipped,
    );
    const [rule] = parseTriggerRules([{ id: 'r1', on: 'cart.item.added', enabled: null }], skipped);
    expect(skipped).toEqual([]);
    expect(product?.currency).toBe('EUR');
    expect(variant).toMatchObject({ isDefault: false, priority: 0 });
    expect(rule?.enabled).toBe(true);
  });

  it("keeps a rule's promo copy, as JSON or as JSON text (the marketer's own words for the promo slot)", () => {
    const skipped: SkippedRow[] = [];
    const promo = {
      codePrefix: 'TRAIL',
      discountPercent: 10,
      ttlHours: 48,
      capPerPerson: 1,
      title: '{discount} % Rabatt',
    };
    const rules = parseTriggerRules(
      [
        { id: 'r1', on: 'cart.item.added', promo },
        { id: 'r2', on: 'cart.item.added', promo: JSON.stringify({ ...promo, body: 'Bis {until}.' }) },
      ],
      skipped,
    );
    expect(skipped).toEqual([]);
    expect(rules.map((r) => [r.promo?.title, r.promo?.body])).toEqual([
      ['{discount} % Rabatt', undefined],
      ['{discount} % Rabatt', 'Bis {until}.'],
    ]);
  });

  it('skips a product whose price is blank instead of offering it at 0.00', () => {
    const skipped: SkippedRow[] = [];
    const row = { slug: 'p', title: 'P', category: 'c', stock: 1 };
    const products = parseProducts(
      [
        { ...row, id: 'null-price', price: null },
        { ...row, id: 'empty-price', price: ' ' },
        { ...row, id: 'priced', price: '19.90' },
        { ...row, id: 'free', price: 0 },
      ],
      skipped,
    );
    expect(products.map((p) => [p.id, p.price])).toEqual([
      ['priced', 19.9],
      ['free', 0],
    ]);
    expect(skipped.map((s) => [s.id, s.problem.split(':')[0]])).toEqual([
      ['null-price', 'price'],
      ['empty-price', 'price'],
    ]);
  });

  it('fails loudly on a wrong token instead of serving an empty catalog as if it were real', async () => {
    await expect(loadCatalogFromDirectus({ ...withDirectus, DIRECTUS_TOKEN: 'wrong' }, 'v')).rejects.toThrow(
      /HTTP 401/,
    );
  });
});

describe('catalog at the edge', () => {
  beforeEach(async () => {
    await env.EDGE_CACHE.delete(CATALOG_VERSION_KEY);
    await invalidateCatalog(withDirectus);
  });

  // First of the file's reads: only a cold isolate has no catalog to fall back on.
  it('degrades to an empty catalog (defaults only) when Directus is unreachable and nothing is cached', async () => {
    const index = await getCatalog({ ...withDirectus, DIRECTUS_TOKEN: 'wrong' }, 'demo');
    expect(index.products).toEqual([]);
  });

  it('loads from Directus once, then serves from memory and KV', async () => {
    const before = await directusReads();
    const first = await getCatalog(withDirectus, 'demo');
    expect(first.products.map((p) => p.id)).toEqual(['d-jacket', 'd-socks']);
    const second = await getCatalog(withDirectus, 'demo');
    expect(second).toBe(first);
    expect(await directusReads()).toBe(before + 3);
    const version = await env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
    expect(version).toBe(first.version);
    expect(await env.EDGE_CACHE.get(`catalog:snapshot:${version}`, 'json')).toMatchObject({ version });
  });

  it('reloads after the webhook invalidates it', async () => {
    const first = await getCatalog(withDirectus, 'demo');
    const before = await directusReads();
    const version = await invalidateCatalog(withDirectus);
    const next = await getCatalog(withDirectus, 'demo');
    expect(next.version).toBe(version);
    expect(next.version).not.toBe(first.version);
    expect(await directusReads()).toBe(before + 3);
  });

  it('lands an invalidation whose KV write is refused once (two changes within a second)', async () => {
    await getCatalog(withDirectus, 'demo');
    let refusals = 1;
    const kv = {
      get: (key: string) => env.EDGE_CACHE.get(key),
      put: (...args: Parameters<KVNamespace['put']>) =>
        refusals-- > 0
          ? Promise.reject(new Error('KV PUT failed: 429 Too Many Requests'))
          : env.EDGE_CACHE.put(...args),
    } as unknown as KVNamespace;
    // Before, the webhook failed and the previous catalog stayed in force everywhere.
    const version = await invalidateCatalog({ ...withDirectus, EDGE_CACHE: kv });
    expect(await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe(version);
    expect((await getCatalog(withDirectus, 'demo')).version).toBe(version);
  });

  it('serves a catalog KV refuses to store (over its value limit) from memory, without reading Directus again', async () => {
    const kv = {
      get: (key: string, type?: 'json') => env.EDGE_CACHE.get(key, type as 'json'),
      put: (key: string, ...rest: [string, KVNamespacePutOptions?]) =>
        key.startsWith('catalog:snapshot:')
          ? Promise.reject(new Error('KV PUT failed: 413 Value length of 26806459 exceeds limit'))
          : env.EDGE_CACHE.put(key, ...rest),
    } as unknown as KVNamespace;
    const tooBig = { ...withDirectus, EDGE_CACHE: kv };
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const before = await directusReads();
    const first = await getCatalog(tooBig, 'demo');
    // Before, the failed write left the empty catalog in force, and Directus was read again
    // every few seconds.
    expect(first.products.map((p) => p.id)).toEqual(['d-jacket', 'd-socks']);
    expect(await getCatalog(tooBig, 'demo')).toBe(first);
    expect(await directusReads()).toBe(before + 3);
    expect(warn.mock.calls.map((call) => String(call[0])).join('\n')).toContain('catalog not cached in KV');
    warn.mockRestore();
  });

  it('reads only the product fields the edge uses: a long description cannot make the snapshot outgrow KV', async () => {
    const asked: string[] = [];
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      asked.push(String(input instanceof Request ? input.url : input));
      return realFetch(input, init);
    });
    try {
      await loadCatalogFromDirectus(withDirectus, 'fields-test');
    } finally {
      spy.mockRestore();
    }
    const products = new URL(asked.find((u) => u.includes('/items/products')) ?? 'http://none/');
    const fields = products.searchParams.get('fields')?.split(',') ?? [];
    expect(fields).not.toContain('description');
    // What decisions and the catalog index read is still asked for.
    expect(fields).toEqual(
      expect.arrayContaining(['id', 'slug', 'title', 'category', 'tags', 'price', 'stock']),
    );
  });

  it('serves a published snapshot without asking Directus, indexed for decisions', async () => {
    const before = await directusReads();
    await putCatalogSnapshot(withDirectus, FIXTURE_CATALOG);
    const index = await getCatalog(withDirectus, 'demo');
    expect(index.version).toBe('fixture-1');
    expect(index.postings.get('category:coffee')?.length).toBe(4);
    expect(index.byPopularity.length).toBe(FIXTURE_CATALOG.products.length - 1);
    expect(await directusReads()).toBe(before);
  });

  it('remembers that Directus failed: later requests do not each try it again', async () => {
    const broken = { ...withDirectus, DIRECTUS_TOKEN: 'wrong' };
    const before = await directusAttempts();
    const [first] = await Promise.all(Array.from({ length: 5 }, () => getCatalog(broken, 'demo')));
    for (let i = 0; i < 5; i++) expect(await getCatalog(broken, 'demo')).toBe(first);
    // One attempt (its three collection reads), not one per request.
    const reads = (await directusAttempts()) - before;
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(3);
  });

  it('keeps serving the last good catalog, not an empty one, when Directus fails after an invalidation', async () => {
    const good = await getCatalog(withDirectus, 'demo');
    expect(good.products.length).toBeGreaterThan(0);
    // The webhook invalidates it; then Directus turns the Worker away (for the 5 s the
    // failure is remembered, and on every retry after it).
    await invalidateCatalog(withDirectus);
    const broken = { ...withDirectus, DIRECTUS_TOKEN: 'wrong' };
    for (let i = 0; i < 3; i++) {
      const served = await getCatalog(broken, 'demo');
      expect(served.products.map((p) => p.id)).toEqual(['d-jacket', 'd-socks']);
      expect(served.slotContent.get('hero')?.[0]?.title).toBe('From Directus');
    }
  });

  describe('refreshing while serving', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** This isolate holds fixture-1; another isolate publishes fixture-2 (only KV changes). */
    async function heldThenPublishedElsewhere(): Promise<void> {
      await putCatalogSnapshot(withDirectus, FIXTURE_CATALOG);
      expect((await getCatalog(withDirectus, 'demo')).version).toBe('fixture-1');
      await env.EDGE_CACHE.put(
        'catalog:snapshot:fixture-2',
        JSON.stringify({ ...FIXTURE_CATALOG, version: 'fixture-2' }),
      );
      await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, 'fixture-2');
    }

    it('serves the catalog it holds at once and hands the refresh to the request’s waitUntil, which installs the newer one', async () => {
      // (Without waitUntil, workerd cancels the refresh's reads when that request answers:
      // the refresh never settles and the isolate keeps its stale catalog for good.)
      await heldThenPublishedElsewhere();
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + CATALOG_RECHECK_MS + 1);

      const kept: Promise<unknown>[] = [];
      const served = await getCatalog(withDirectus, 'demo', (promise) => kept.push(promise));
      expect(served.version).toBe('fixture-1');
      expect(kept).toHaveLength(1);
      // Requests that come while it runs neither wait for it nor start another.
      expect((await getCatalog(withDirectus, 'demo', (promise) => kept.push(promise))).version).toBe(
        'fixture-1',
      );
      expect(kept).toHaveLength(1);
      await kept[0];
      expect((await getCatalog(withDirectus, 'demo')).version).toBe('fixture-2');
    });

    it('gives up on a refresh stuck for good and starts another, instead of serving what it holds forever', async () => {
      await heldThenPublishedElsewhere();
      // A KV read that never settles, as one the runtime cancelled with its request does.
      const stuck = {
        ...withDirectus,
        EDGE_CACHE: { get: () => new Promise<never>(() => {}) } as unknown as KVNamespace,
      };
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + CATALOG_RECHECK_MS + 1);
      const kept: Promise<unknown>[] = [];
      expect((await getCatalog(stuck, 'demo', (promise) => kept.push(promise))).version).toBe('fixture-1');
      vi.setSystemTime(Date.now() + READ_GIVEN_UP_MS - 1);
      expect((await getCatalog(withDirectus, 'demo', (promise) => kept.push(promise))).version).toBe(
        'fixture-1',
      );
      // Not yet given up: no second refresh.
      expect(kept).toHaveLength(1);
      vi.setSystemTime(Date.now() + 2);
      expect((await getCatalog(withDirectus, 'demo', (promise) => kept.push(promise))).version).toBe(
        'fixture-1',
      );
      expect(kept).toHaveLength(2);
      await kept[1];
      expect((await getCatalog(withDirectus, 'demo')).version).toBe('fixture-2');
    });

    it('releases the callers waiting on a first load that is stuck for good once it is given up', async () => {
      await putCatalogSnapshot(withDirectus, FIXTURE_CATALOG);
      await getCatalog(withDirectus, 'demo');
      // Nothing held now: a caller with no budget of its own (a trigger run) waits for the load.
      await invalidateCatalog(withDirectus);
      const stuck = {
        ...withDirectus,
        EDGE_CACHE: { get: () => new Promise<never>(() => {}) } as unknown as KVNamespace,
      };
      vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
      let served = 'still waiting';
      void getCatalog(stuck, 'demo', () => undefined).then((catalog) => {
        served = catalog.version;
      });
      await vi.advanceTimersByTimeAsync(READ_GIVEN_UP_MS - 1);
      expect(served).toBe('still waiting');
      // Given up: it is served what a slow decision is, the last catalog this isolate read.
      await vi.advanceTimersByTimeAsync(1);
      expect(served).toBe('fixture-1');
    });

    it('does not let a refresh that began before an invalidation install what it read', async () => {
      await putCatalogSnapshot(withDirectus, FIXTURE_CATALOG);
      const kept: Promise<unknown>[] = [];
      // No catalog held (just published): this request waits for the refresh of fixture-1…
      const before = getCatalog(withDirectus, 'demo', (promise) => kept.push(promise));
      // …and the webhook invalidates while it runs.
      const version = await invalidateCatalog(withDirectus);
      // (What that request is served depends on which came first, its read or the invalidation.)
      await before;
      await Promise.all(kept);
      const after = await getCatalog(withDirectus, 'demo');
      expect(after.version).toBe(version);
    });
  });
});
