/**
 * One catalog per site: a deployment serving two shops serves each its own products, slot
 * content and trigger rules (and the shared rows, those with no site), never the other's,
 * on /v1/decide and in the triggers its events fire. Also that a Directus row's `site_id`
 * is read.
 */
import { env } from 'cloudflare:workers';
import type { CustomerAction, DecideResponse } from '@attune/shared-schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twoSitesEnv } from '../admin/test-support.ts';
import { addedToCart, seedPerson, viewed } from '../decide/fixtures/people.ts';
import { call } from '../ingest/test-support.ts';
import { profileStub } from '../profile/client.ts';
import { newUlid } from '../profile/ulid.ts';
import { runTriggers } from '../triggers/index.ts';
import { FIXTURE_CATALOG } from './fixtures/catalog.ts';
import { getCatalog, putCatalogSnapshot } from './index.ts';
import { parseProducts, parseSlotContent, parseTriggerRules, type SkippedRow } from './source.ts';
import type { Product, SlotVariant } from './types.ts';

const twoSites = twoSitesEnv();

const product = (id: string, popularity: number, siteId?: string): Product => ({
  id,
  slug: id,
  title: id,
  category: 'outdoor',
  tags: ['jacket'],
  price: 10,
  currency: 'EUR',
  image: '',
  stock: 5,
  popularity,
  ...(siteId !== undefined && { siteId }),
});

const hero = (id: string, priority: number, siteId?: string): SlotVariant => ({
  id,
  slot: 'hero',
  kind: 'banner',
  title: id,
  body: '',
  targetInterests: [],
  targetSegments: [],
  isDefault: true,
  priority,
  ...(siteId !== undefined && { siteId }),
});

beforeAll(async () => {
  await putCatalogSnapshot(env, {
    version: 'two-shops-1',
    products: [
      product('demo-jacket', 0.5, 'demo'),
      // The other shop's best seller: before, it led the demo shop's recommendations.
      product('other-secret-launch', 1, 'other'),
      product('shared-socks', 0.3),
    ],
    slotContent: [hero('demo-hero', 1, 'demo'), hero('other-hero', 99, 'other')],
    triggerRules: [
      // The other shop's promotion: its code must never be offered to the demo shop's people.
      {
        id: 'other-jackets',
        siteId: 'other',
        enabled: true,
        on: 'cart.item.added',
        when: { category: 'outdoor' },
        promo: { codePrefix: 'OTHER', discountPercent: 50, ttlHours: 24, capPerPerson: 5 },
      },
    ],
  });
});

afterAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

async function decide(writeKey: string, origin: string, anonymousId: string): Promise<DecideResponse> {
  const res = await call(null, {
    method: 'GET',
    origin,
    path: `/v1/decide?writeKey=${writeKey}&slots=hero,recommendations&anonymousId=${anonymousId}`,
    env: twoSites,
  });
  expect(res.status).toBe(200);
  return res.json<DecideResponse>();
}

describe('two sites, one deployment', () => {
  it("decides each site's slots from its own catalog and the shared rows only", async () => {
    const demo = await decide('pk_demo_attune', 'http://localhost:3000', 'tenancy-visitor-a');
    expect(demo.decisions.hero?.variant).toBe('demo-hero');
    expect(demo.decisions.recommendations?.items?.map((i) => i.id).sort()).toEqual([
      'demo-jacket',
      'shared-socks',
    ]);
    const other = await decide('pk_other_attune', 'http://other.test', 'tenancy-visitor-b');
    expect(other.decisions.hero?.variant).toBe('other-hero');
    expect(other.decisions.recommendations?.items?.map((i) => i.id).sort()).toEqual([
      'other-secret-launch',
      'shared-socks',
    ]);
  });

  it('personalizes a consented person from their own site only', async () => {
    await seedPerson(env, 'anon:tenancy-consented', { personalization: true }, [
      viewed('demo-jacket', 'outdoor', ['jacket']),
    ]);
    const demo = await decide('pk_demo_attune', 'http://localhost:3000', 'tenancy-consented');
    expect(demo.decisions.recommendations?.items?.map((i) => i.id)).not.toContain('other-secret-launch');
  });

  it("fires only the site's own trigger rules", async () => {
    const key = 'anon:tenancy-cart' as const;
    await seedPerson(env, key, { analytics: true, personalization: true, marketing: true });
    const view = await profileStub(env, 'demo', key).view();
    if (!view) throw new Error('profile missing');
    const cartAdd: CustomerAction = {
      id: newUlid(),
      type: 'track',
      name: 'cart.item.added',
      timestamp: new Date().toISOString(),
      anonymousId: key.slice(5),
      properties: { ...addedToCart('demo-jacket', 'outdoor').properties },
      schemaVersion: 1,
    };
    const out = await runTriggers(env, { siteId: 'demo', events: [cartAdd], profile: view, marketing: true });
    expect(out.filter((e) => e.name === 'promo.offered')).toEqual([]);
  });

  it('getCatalog gives a site its own rows and the shared ones', async () => {
    const ids = (await getCatalog(twoSites, 'other')).products.map((p) => p.id).sort();
    expect(ids).toEqual(['other-secret-launch', 'shared-socks']);
  });

  it('indexes the shared rows once for every site that owns none', async () => {
    // Building an index of 10,000 products takes ~55 ms of CPU: a deployment whose rows are
    // all shared must not build one per site it serves at each catalog change.
    const third = await getCatalog(twoSites, 'third');
    expect(third.products.map((p) => p.id)).toEqual(['shared-socks']);
    expect(await getCatalog(twoSites, 'fourth')).toBe(third);
    expect(await getCatalog(twoSites, 'demo')).not.toBe(third);
  });
});

describe('Directus rows', () => {
  it("read each row's site_id; an empty one is every site's", () => {
    const skipped: SkippedRow[] = [];
    const base = { slug: 's', title: 't', category: 'c', price: 1, stock: 1 };
    const products = parseProducts(
      [
        { ...base, id: 'a', site_id: 'demo' },
        { ...base, id: 'b', site_id: null },
        { ...base, id: 'c', site_id: '' },
      ],
      skipped,
    );
    expect(skipped).toEqual([]);
    expect(products.map((p) => p.siteId)).toEqual(['demo', undefined, undefined]);
    const slots = parseSlotContent(
      [{ id: 'h', slot: 'hero', kind: 'banner', title: 'x', site_id: 'other' }],
      skipped,
    );
    expect(slots[0]?.siteId).toBe('other');
    const rules = parseTriggerRules([{ id: 'r', on: 'cart.item.added', site_id: 'other' }], skipped);
    expect(rules[0]?.siteId).toBe('other');
  });
});
