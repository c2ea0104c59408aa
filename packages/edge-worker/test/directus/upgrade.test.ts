/**
 * An instance bootstrapped by an earlier release, bootstrapped again by this one (as
 * `./attune up` does after an upgrade): what the schema gained since is added, what an
 * earlier schema kept that it no longer keeps is deleted, and what the instance holds stays.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { directusFromEnv } from '../../src/directus/client.ts';
import { catchUpOrders } from '../../src/orders/catch-up.ts';
import { getSiteById } from '../../src/sites/index.ts';
import { admin, directusControl, env, SITE, uniqueId } from './support.ts';

interface Field {
  schema: { is_indexed: boolean } | null;
}

/** The fields an access request or an erasure finds a person's orders by. */
const ORDER_LOOKUPS = ['site_id', 'user_id', 'anonymous_id'];
/** What a lift report says of how sure it is, which reports before them did not keep. */
const LIFT_INTERVALS = ['difference_low', 'difference_high', 'lift_low', 'lift_high', 'significant'];

const indexed = async (field: string) =>
  (await admin<Field>('GET', `/fields/orders/${field}`)).schema?.is_indexed;

/** What Directus's revision history holds of an item. */
const revisionsOf = (collection: string, item: string) =>
  admin<unknown[]>(
    'GET',
    `/revisions?limit=-1&filter=${encodeURIComponent(
      JSON.stringify({ _and: [{ collection: { _eq: collection } }, { item: { _eq: item } }] }),
    )}`,
  );

/** The Flow sending an order an update marks paid, which instances before it lack. */
const PAID_ORDER_FLOW = 'Attune: paid order to the edge';

/** The Flows of a name, with their operations. */
const flowsNamed = (name: string) =>
  admin<{ id: string; operations: string[] }[]>(
    'GET',
    `/flows?filter[name][_eq]=${encodeURIComponent(name)}&fields=id,operations`,
  );

describe('bootstrap of an existing instance', () => {
  const orderId = uniqueId('order');
  const userId = uniqueId('user');
  const personRow = `demo:anon:${uniqueId('revised')}`;
  const reportId = `demo:${uniqueId('upgrade-lift')}:28d:2026-11-28`;

  beforeAll(async () => {
    // …and as one whose lift reports did not say how sure they are, with a report of then.
    for (const field of LIFT_INTERVALS) await admin('DELETE', `/fields/lift_reports/${field}`);
    await admin('POST', '/items/lift_reports', {
      id: reportId,
      site_id: 'demo',
      experiment: 'upgrade-lift',
      treatment_people: 4,
      treatment_converters: 2,
      treatment_rate: 0.5,
      holdout_people: 4,
      holdout_converters: 1,
      holdout_rate: 0.25,
      lift: 1,
    });
    // A Worker deployed before the bootstrap: Directus drops the fields it does not know.
    await admin('POST', '/items/lift_reports', {
      id: `${reportId}-early`,
      site_id: 'demo',
      experiment: 'upgrade-lift',
      lift: 1,
      lift_low: 0.5,
      significant: true,
    });
    await admin('POST', '/items/orders', {
      id: orderId,
      site_id: 'demo',
      user_id: userId,
      anonymous_id: uniqueId('anon'),
      total: 42.5,
      currency: 'EUR',
      items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
      status: 'pending',
    });
    // The instance as a release before the indexes made it…
    for (const field of ORDER_LOOKUPS)
      await admin('PATCH', `/fields/orders/${field}`, { schema: { is_indexed: false } });
    // …and as one whose people kept revisions: a copy of a person's row erasure never reaches.
    await admin('PATCH', '/collections/people', { meta: { accountability: 'all' } });
    await admin('POST', '/items/people', {
      id: personRow,
      site_id: 'demo',
      person_key: personRow.slice('demo:'.length),
      traits: { email: 'someone@example.com' },
    });
    await admin('DELETE', `/items/people/${encodeURIComponent(personRow)}`);
    expect(await revisionsOf('people', personRow)).not.toEqual([]);
    for (const field of ORDER_LOOKUPS) expect(await indexed(field)).toBe(false);
    // …and as one from before orders marked paid by an update were sent: without that Flow.
    for (const { id } of await flowsNamed(PAID_ORDER_FLOW)) await admin('DELETE', `/flows/${id}`);
    expect(await flowsNamed(PAID_ORDER_FLOW)).toEqual([]);

    // …and as one whose orders kept no time of their last change. The Worker's catch-up then
    // says what to do, having caught up what it can read.
    await admin('DELETE', '/fields/orders/date_updated');
    const site = await getSiteById(env(), SITE);
    if (!site) throw new Error('the demo site is missing from wrangler.toml');
    await expect(
      catchUpOrders(env(), site, { directus: directusFromEnv(env()), now: Date.now(), unsited: true }),
    ).rejects.toThrow(/orders\.date_updated is missing in Directus: bootstrap it again/);

    await directusControl('upgrade');
  }, 180_000);

  it("adds the time of an order's last change, which an update stamps", async () => {
    expect(await admin<{ meta: { special: string[] } }>('GET', '/fields/orders/date_updated')).toMatchObject({
      meta: { special: expect.arrayContaining(['date-updated']) },
    });
    const lastChange = async () =>
      (await admin<{ date_updated: string | null }>('GET', `/items/orders/${orderId}`)).date_updated;
    expect(await lastChange()).toBeNull();
    await admin('PATCH', `/items/orders/${orderId}`, { status: 'paid' });
    expect(Date.parse(String(await lastChange()))).not.toBeNaN();
  });

  it("indexes the orders' person fields an older release left unindexed, keeping the orders", async () => {
    for (const field of ORDER_LOOKUPS) expect(await indexed(field), field).toBe(true);
    const order = await admin<{ user_id: string; total: number }>('GET', `/items/orders/${orderId}`);
    expect(order).toMatchObject({ user_id: userId, total: 42.5 });
  });

  it('adds what a lift report says of how sure it is, keeping the reports of before (empty there: not judged)', async () => {
    for (const field of LIFT_INTERVALS)
      expect(await admin<{ field: string }>('GET', `/fields/lift_reports/${field}`), field).toMatchObject({
        field,
      });
    const kept = await admin<Record<string, unknown>>(
      'GET',
      `/items/lift_reports/${encodeURIComponent(reportId)}`,
    );
    expect(kept).toMatchObject({ treatment_people: 4, lift: 1, significant: null, difference_low: null });
    const early = await admin<Record<string, unknown>>(
      'GET',
      `/items/lift_reports/${encodeURIComponent(`${reportId}-early`)}`,
    );
    expect(early).toMatchObject({ lift: 1, lift_low: null, significant: null });
  });

  it('adds the Flow sending an order an update marks paid, once, whole', async () => {
    const flows = await flowsNamed(PAID_ORDER_FLOW);
    expect(flows).toHaveLength(1);
    expect(flows[0]?.operations).toHaveLength(4);
  });

  it('keeps one Flow refusing what the edge would skip, which still refuses', async () => {
    const flows = await flowsNamed('Attune: refuse what the edge would skip');
    expect(flows).toHaveLength(1);
    expect(flows[0]?.operations).toHaveLength(2);
    const key = uniqueId('unlabelled').replace(/[^a-z0-9_]/g, '_');
    await expect(
      admin('POST', '/items/consent_categories', { key, site_id: 'upgrade-test-site' }),
    ).rejects.toThrow(/400.*\blabel\b/);
  });

  it('deletes the revisions an earlier schema kept of people, and keeps none of new writes', async () => {
    expect(await revisionsOf('people', personRow)).toEqual([]);
    expect(
      (await admin<{ meta: { accountability: string | null } }>('GET', '/collections/people')).meta
        .accountability,
    ).toBeNull();
  });
});
