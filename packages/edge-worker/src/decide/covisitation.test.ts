import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { CovisitMessage } from '@attune/shared-schema';
import { beforeEach, describe, expect, it } from 'vitest';
import { applyCovisits, clearCovisitCache, covisitShard, readCovisits } from './covisitation.ts';
import { MAX_NEXT_PER_ITEM } from './covisitation-do.ts';

const at = '2026-11-01T10:00:00.000Z';
const visit = (from: string, to: string, siteId = 'demo'): CovisitMessage => ({
  kind: 'covisit',
  siteId,
  from,
  to,
  at,
});

describe('co-visitation', () => {
  beforeEach(() => clearCovisitCache());

  it('counts "viewed next" transitions and reads them most frequent first', async () => {
    await applyCovisits(env, [
      visit('tent-2p', 'sleeping-bag'),
      visit('tent-2p', 'sleeping-bag'),
      visit('tent-2p', 'camp-stove'),
      visit('tent-2p', 'sleeping-bag'),
      visit('tent-2p', 'tent-2p'),
      visit('grinder', 'espresso-beans'),
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
    await applyCovisits(env, [visit('a', 'b', 'site-1')]);
    await applyCovisits(env, [visit('a', 'b', 'site-1'), visit('a', 'c', 'site-2')]);
    expect((await readCovisits(env, 'site-1', ['a'], 1000)).get('a')).toEqual([{ to: 'b', count: 2 }]);
    expect((await readCovisits(env, 'site-2', ['a'], 1000)).get('a')).toEqual([{ to: 'c', count: 1 }]);
  });

  it('bounds the successors kept per product', async () => {
    const messages: CovisitMessage[] = [];
    for (let i = 0; i < MAX_NEXT_PER_ITEM * 1.5; i++) {
      for (let k = 0; k <= i % 3; k++) messages.push(visit('hub', `next-${i}`, 'big'));
    }
    await applyCovisits(env, messages);
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
});
