/**
 * Co-visitation counts: aggregated per shard, read most frequent first, bounded per
 * product, and counted once per queue message however often the message is delivered.
 */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { CovisitMessage } from '@attune/shared-schema';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import {
  applyCovisits,
  type CovisitDelivery,
  clearCovisitCache,
  covisitShard,
  readCovisits,
} from './covisitation.ts';
import { APPLIED_WINDOW_MS, MAX_NEXT_PER_ITEM } from './covisitation-do.ts';

const at = '2026-11-01T10:00:00.000Z';
const visit = (from: string, to: string, siteId = 'demo'): CovisitMessage => ({
  kind: 'covisit',
  siteId,
  from,
  to,
  at,
});
let nextId = 0;
/** The pairs as one queue message carries them, under a message id of their own unless given. */
const message = (visits: CovisitMessage[], messageId = `m-${nextId++}`): CovisitDelivery => ({
  messageId,
  visits,
});

describe('co-visitation', () => {
  beforeEach(() => clearCovisitCache());
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('counts "viewed next" transitions and reads them most frequent first', async () => {
    await applyCovisits(env, [
      message([visit('tent-2p', 'sleeping-bag'), visit('tent-2p', 'sleeping-bag')]),
      message([visit('tent-2p', 'camp-stove'), visit('tent-2p', 'sleeping-bag')]),
      message([visit('tent-2p', 'tent-2p'), visit('grinder', 'espresso-beans')]),
    ]);
    const next = await readCovisits(env, 'demo', ['tent-2p', 'grinder', 'never-viewed'], 1000);
    expect(next.get('tent-2p')).toEqual([
      { to: 'sleeping-bag', count: 3 },
      { to: 'camp-stove', count: 1 },
    ]);
    expect(next.get('grinder')).toEqual([{ to: 'espresso-beans', count: 1 }]);
    expect(next.get('never-viewed')).toEqual([]);
  });

  it('keeps sites apart and adds later batches to earlier ones', async () => {
    await applyCovisits(env, [message([visit('a', 'b', 'site-1')])]);
    await applyCovisits(env, [message([visit('a', 'b', 'site-1'), visit('a', 'c', 'site-2')])]);
    expect((await readCovisits(env, 'site-1', ['a'], 1000)).get('a')).toEqual([{ to: 'b', count: 2 }]);
    expect((await readCovisits(env, 'site-2', ['a'], 1000)).get('a')).toEqual([{ to: 'c', count: 1 }]);
  });

  it('bounds the successors kept per product', async () => {
    const messages: CovisitMessage[] = [];
    for (let i = 0; i < MAX_NEXT_PER_ITEM * 1.5; i++) {
      for (let k = 0; k <= i % 3; k++) messages.push(visit('hub', `next-${i}`, 'big'));
    }
    await applyCovisits(env, [message(messages)]);
    const stub = env.COVISITATION.get(
      env.COVISITATION.idFromName(`big/covisit/${covisitShard('big', 'hub')}`),
    );
    const rows = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM covisits WHERE from_id = 'hub'").one(),
    );
    expect(rows.n).toBe(MAX_NEXT_PER_ITEM);
    const top = (await readCovisits(env, 'big', ['hub'], 1000)).get('hub') ?? [];
    expect(top[0]?.count).toBe(3);
  });

  it('counts a redelivered message once, also when its first delivery failed in another shard', async () => {
    const site = 'redelivered';
    // Two source products in different shards: one message, two shard writes.
    const second = ['p2', 'p3', 'p4', 'p5', 'p6'].find(
      (p) => covisitShard(site, p) !== covisitShard(site, 'p1'),
    );
    if (second === undefined) throw new Error('no product in another shard');
    const pairs = message([visit('p1', 'x', site), visit(second, 'y', site)], 'queue-msg-1');
    const unavailable = env.COVISITATION.idFromName(`${site}/covisit/${covisitShard(site, second)}`);
    const get = env.COVISITATION.get.bind(env.COVISITATION);
    const failing = vi.spyOn(env.COVISITATION, 'get').mockImplementation((id) => {
      if (id.equals(unavailable)) {
        return {
          record: async () => Promise.reject(new Error('shard unavailable')),
        } as unknown as ReturnType<typeof get>;
      }
      return get(id);
    });
    // First delivery: p1's shard counts, the other fails, so the queue delivers the message again.
    await expect(applyCovisits(env, [pairs])).rejects.toThrow('shard unavailable');
    failing.mockRestore();
    // The redelivery (same message id) and a duplicate delivery after it.
    await applyCovisits(env, [pairs]);
    await applyCovisits(env, [pairs]);
    const next = await readCovisits(env, site, ['p1', second], 1000);
    expect(next.get('p1')).toEqual([{ to: 'x', count: 1 }]);
    expect(next.get(second)).toEqual([{ to: 'y', count: 1 }]);
    // Another message with the same pairs is another person's visit: it counts.
    await applyCovisits(env, [message([visit('p1', 'x', site)], 'queue-msg-2')]);
    clearCovisitCache();
    expect((await readCovisits(env, site, ['p1'], 1000)).get('p1')).toEqual([{ to: 'x', count: 2 }]);
  });

  it('remembers counted messages for a bounded window only', async () => {
    const site = 'window';
    const stub = env.COVISITATION.get(
      env.COVISITATION.idFromName(`${site}/covisit/${covisitShard(site, 'a')}`),
    );
    await applyCovisits(env, [message([visit('a', 'b', site)], 'recent')]);
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO applied (message_id, at) VALUES ('long-ago', ?)",
        Date.now() - APPLIED_WINDOW_MS - 1,
      );
    });
    await applyCovisits(env, [message([visit('a', 'c', site)])]);
    const kept = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ message_id: string }>('SELECT message_id FROM applied ORDER BY message_id')
        .toArray()
        .map((r) => r.message_id),
    );
    expect(kept).not.toContain('long-ago');
    expect(kept).toContain('recent');
  });

  it('counts only pairs of products the catalog holds, once it has one', async () => {
    const site = 'catalog-only';
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
    try {
      // What a browser naming made-up products sends: each would be a new row in a shard for good.
      await applyCovisits(env, [
        message([
          visit('trail-jacket', 'rain-shell', site),
          visit('trail-jacket', 'made-up-1', site),
          visit('made-up-2', 'rain-shell', site),
        ]),
      ]);
      const next = await readCovisits(env, site, ['trail-jacket', 'made-up-2'], 1000);
      expect(next.get('trail-jacket')).toEqual([{ to: 'rain-shell', count: 1 }]);
      expect(next.get('made-up-2')).toEqual([]);
    } finally {
      // The other tests name products of their own: without a catalog, every pair counts.
      await putCatalogSnapshot(env, { version: 'none', products: [], slotContent: [], triggerRules: [] });
    }
  });

  it('counts no made-up pairs for a site with no products of its own beside another site that has some', async () => {
    // Each site is judged by its own catalog: one whose rows are all another site's has no
    // products, which is not "no catalog read yet" (when every pair counts).
    const site = 'no-products-yet';
    await putCatalogSnapshot(env, {
      ...FIXTURE_CATALOG,
      version: 'other-shop-only',
      products: FIXTURE_CATALOG.products.map((p) => ({ ...p, siteId: 'other-shop' })),
    });
    try {
      await applyCovisits(env, [message([visit('made-up-3', 'made-up-4', site)])]);
      const next = await readCovisits(env, site, ['made-up-3'], 1000);
      expect(next.get('made-up-3')).toEqual([]);
    } finally {
      await putCatalogSnapshot(env, { version: 'none', products: [], slotContent: [], triggerRules: [] });
    }
  });
});
