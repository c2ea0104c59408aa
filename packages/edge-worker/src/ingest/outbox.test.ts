/**
 * What the queue refuses is not lost: an ingest whose queue sends fail (each sendBatch and
 * its retry) parks the messages at the person's ProfileDO, whose alarm sends them once the
 * queue takes them again; an erasure meanwhile sends none of them; events that arrive
 * meanwhile do not push the resend out to the retention date.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { eventMessagesOf, type QueueMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { flushStats, readStats } from '../observability/index.ts';
import { profileStub } from '../profile/client.ts';
import type { ProfileDO } from '../profile/profile-do.ts';
import { parkingGroups } from './outbox.ts';
import { QUEUE_SEND_BUDGET_MS, QueueSendError, QueueTimeoutError, sendMessages } from './queue-producer.ts';
import {
  anonId,
  call,
  collect,
  consentFor,
  makeEvent,
  people,
  productView,
  recordQueue,
  SITE,
  segment,
  signed,
  stuckQueueCall,
  WRITE_KEY,
} from './test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

/** A queue that refuses every send, as during an outage; counts the tries. */
function queueDown(): { tries: () => number } {
  let tries = 0;
  vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async () => {
    tries++;
    throw new Error('Queue send failed: internal error');
  });
  return { tries: () => tries };
}

/** A queue whose sends never settle (stuckQueueCall); counts the calls. */
function queueStuck(): { tries: () => number } {
  let tries = 0;
  vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(() => {
    tries++;
    return stuckQueueCall();
  });
  return { tries: () => tries };
}

/** The product ids of `a`'s events among queue messages, in order. */
function productIdsOf(messages: QueueMessage[], a: string): unknown[] {
  return eventMessagesOf(messages)
    .filter((m) => m.event.anonymousId === a)
    .map((m) => m.event.properties?.productId);
}

/** How long until the object's alarm, in ms (infinite when none is set). */
async function alarmDueIn(stub: ReturnType<typeof profileStub>): Promise<number> {
  const at = await runInDurableObject(stub, (_o: ProfileDO, s) => s.storage.getAlarm());
  return at === null ? Number.POSITIVE_INFINITY : at - Date.now();
}

function parkedCount(a: string): Promise<number> {
  return runInDurableObject(profileStub(env, SITE, `anon:${a}`), (_o: ProfileDO, state) => {
    const table = state.storage.sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'")
      .toArray();
    if (table.length === 0) return 0;
    return state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM outbox').one().n;
  });
}

describe('messages the queue refuses', () => {
  it('are parked at the person’s object and sent by its alarm once the queue is back', async () => {
    const a = anonId('outage');
    const before = await readStats(env);
    const down = queueDown();
    const res = await collect([productView(a, 'p-1', 'outdoor'), productView(a, 'p-2', 'outdoor')]);
    // The browser's batch is taken: its events are applied, and a retry would be a duplicate.
    expect(res.status).toBe(200);
    expect(down.tries()).toBeGreaterThanOrEqual(2);
    expect(await parkedCount(a)).toBeGreaterThan(0);
    const stats = await readStats(env);
    expect(stats.queue_parked).toBeGreaterThan(before.queue_parked);
    expect(stats.queue_failed).toBe(before.queue_failed);
    // An access request shows what waits to go downstream.
    const held = (await (await people(`anon:${a}`, 'GET', undefined, '&scope=edge')).json()) as {
      parked?: QueueMessage[];
    };
    expect(productIdsOf(held.parked ?? [], a)).toEqual(['p-1', 'p-2']);

    vi.restoreAllMocks();
    const queue = recordQueue();
    await runDurableObjectAlarm(profileStub(env, SITE, `anon:${a}`));
    expect(productIdsOf(queue.messages, a)).toEqual(['p-1', 'p-2']);
    expect(queue.messages.some((m) => m.kind === 'profile' && m.personId === `anon:${a}`)).toBe(true);
    expect(await parkedCount(a)).toBe(0);
    // Sent once: a later alarm has nothing left to send.
    queue.messages.length = 0;
    await runInDurableObject(profileStub(env, SITE, `anon:${a}`), (o: ProfileDO) => o.alarm());
    expect(productIdsOf(queue.messages, a)).toEqual([]);
  });

  it('wait longer after each refused resend, and keep the alarm for it when later events arrive', async () => {
    const a = anonId('backoff');
    queueDown();
    await collect([productView(a, 'p-1', 'outdoor')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    const alarmIn = () => alarmDueIn(stub);
    expect(await alarmIn()).toBeLessThanOrEqual(10_000);
    // Still down at the resend: kept, and tried again later than the first time.
    await runDurableObjectAlarm(stub);
    expect(await parkedCount(a)).toBeGreaterThan(0);
    const wait = await alarmIn();
    expect(wait).toBeGreaterThan(10_000);
    expect(wait).toBeLessThanOrEqual(20_000);
    // The queue is back for the next batch; its events set the retention alarm, which must
    // not move the resend of the parked ones to a week from now.
    vi.restoreAllMocks();
    const queue = recordQueue();
    await collect([productView(a, 'p-2', 'outdoor')]);
    expect(productIdsOf(queue.messages, a)).toEqual(['p-2']);
    expect(await alarmIn()).toBeLessThanOrEqual(20_000);
    await runDurableObjectAlarm(stub);
    expect(productIdsOf(queue.messages, a)).toEqual(['p-2', 'p-1']);
  });

  it('are never sent once the person is erased', async () => {
    const a = anonId('erased');
    queueDown();
    await collect([productView(a, 'p-1', 'outdoor')]);
    expect(await parkedCount(a)).toBeGreaterThan(0);
    vi.restoreAllMocks();
    const queue = recordQueue();
    expect((await people(`anon:${a}`, 'DELETE')).status).toBe(200);
    expect(await parkedCount(a)).toBe(0);
    await runInDurableObject(profileStub(env, SITE, `anon:${a}`), (o: ProfileDO) => o.alarm());
    expect(queue.messages.map((m) => m.kind)).toEqual(['erasure']);
  });
});

describe('the counts of messages the queue refuses', () => {
  /** The counters as the stats object holds them: what GET /v1/admin/stats answers from another isolate. */
  const stored = async () =>
    (await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName('stats')).readCounts()) as Record<string, number>;

  it('are stored once the request is over, also a decision’s, whose route flushes nothing', async () => {
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
    const a = anonId('counted');
    const granted = consentFor('analytics', 'personalization');
    await collect([
      makeEvent(a, 'consent.updated', { consent: granted, properties: { ...granted, source: 'banner' } }),
      productView(a, 'trail-jacket', 'outdoor'),
    ]);
    await flushStats(env);
    const before = (await stored()).queue_parked ?? 0;
    queueDown();
    // The decision served to them is refused by the queue, and parked at their object.
    const res = await call(null, {
      method: 'GET',
      path: `/v1/decide?writeKey=${WRITE_KEY}&anonymousId=${a}&slots=hero,recommendations`,
    });
    expect(res.status).toBe(200);
    expect(await parkedCount(a)).toBeGreaterThan(0);
    // Before, the count waited in the isolate for an ingest request's flush, which a
    // decide-only isolate never makes (and an isolate evicted first took it with it).
    expect((await stored()).queue_parked ?? 0).toBeGreaterThan(before);
  });
});

describe('a queue whose sends never settle', () => {
  // Each test waits out QUEUE_SEND_BUDGET_MS once (real time: the runtime's own cancelling
  // of a send after the response is what is at stake, so nothing is faked).
  const patience = { timeout: QUEUE_SEND_BUDGET_MS * 3 };

  it(
    'does not take the accepted events with it: they are parked within the send budget',
    patience,
    async () => {
      const a = anonId('stuck');
      const before = await readStats(env);
      const stuck = queueStuck();
      const res = await collect([productView(a, 'p-1', 'outdoor'), productView(a, 'p-2', 'outdoor')]);
      expect(res.status).toBe(200);
      expect(stuck.tries()).toBeGreaterThanOrEqual(1);
      expect(await parkedCount(a)).toBeGreaterThan(0);
      expect((await readStats(env)).queue_parked).toBeGreaterThan(before.queue_parked);

      // Sent by the alarm once the queue answers again.
      vi.restoreAllMocks();
      const queue = recordQueue();
      await runDurableObjectAlarm(profileStub(env, SITE, `anon:${a}`));
      expect(productIdsOf(queue.messages, a)).toEqual(['p-1', 'p-2']);
      expect(await parkedCount(a)).toBe(0);
    },
  );

  it(
    'does not hold the person’s turn at the parked resend: their next batch is taken',
    patience,
    async () => {
      const a = anonId('stuck-resend');
      queueDown();
      await collect([productView(a, 'p-1', 'outdoor')]);
      expect(await parkedCount(a)).toBeGreaterThan(0);
      vi.restoreAllMocks();
      queueStuck();
      const stub = profileStub(env, SITE, `anon:${a}`);
      // The resend gives up on the stuck send: the messages stay parked, tried again later.
      await runDurableObjectAlarm(stub);
      expect(await parkedCount(a)).toBeGreaterThan(0);
      expect(await alarmDueIn(stub)).toBeLessThan(Number.POSITIVE_INFINITY);
      // The person's next batch is applied (it waited behind the resend), and everything
      // goes once the queue is back.
      vi.restoreAllMocks();
      const queue = recordQueue();
      expect((await collect([productView(a, 'p-2', 'outdoor')])).status).toBe(200);
      await runDurableObjectAlarm(stub);
      expect(productIdsOf(queue.messages, a)).toEqual(['p-2', 'p-1']);
    },
  );
});

describe('sendMessages', () => {
  it('gives up on a stuck sendBatch at its budget, and sends nothing after it', async () => {
    let calls = 0;
    const queue = {
      sendBatch: () => {
        calls++;
        return stuckQueueCall();
      },
    } as unknown as Queue;
    const messages = [pageMessage(anonId('budget-a')), pageMessage(anonId('budget-b'))];
    const err = await sendMessages(queue, messages, 50).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QueueSendError);
    expect((err as QueueSendError).unsent).toEqual(messages);
    expect((err as QueueSendError).cause).toBeInstanceOf(QueueTimeoutError);
    // The retry has no budget left: one call, not two.
    expect(calls).toBe(1);
  });
});

/** One page view of `a`'s, as a queue message: parked below as if the queue had refused it. */
const pageMessage = (a: string, path = '/'): QueueMessage => ({
  kind: 'events',
  siteId: SITE,
  personId: `anon:${a}`,
  purposes: ['analytics'],
  events: [
    {
      event: makeEvent(a, 'page.viewed', { consent: null, properties: { path } }),
      enrichment: { receivedAt: new Date().toISOString(), correctedTimestamp: new Date().toISOString() },
    },
  ],
});

describe('a long outage’s backlog', () => {
  it('is sent a few hundred messages per alarm, in order, the next alarm a moment later', async () => {
    const a = anonId('backlog');
    const stub = profileStub(env, SITE, `anon:${a}`);
    const paths = Array.from({ length: 1200 }, (_, i) => `/p/${i}`);
    await stub.park(paths.map((path) => pageMessage(a, path)));
    const queue = recordQueue();
    const sentPaths = () =>
      eventMessagesOf(queue.messages).map((m) => (m.event.properties as { path?: string } | undefined)?.path);
    await runDurableObjectAlarm(stub);
    expect(sentPaths()).toEqual(paths.slice(0, 500));
    expect(await alarmDueIn(stub)).toBeLessThanOrEqual(1000);
    expect(await parkedCount(a)).toBe(700);
    await runDurableObjectAlarm(stub);
    await runDurableObjectAlarm(stub);
    expect(sentPaths()).toEqual(paths);
    expect(await parkedCount(a)).toBe(0);
  });

  it('sent to a queue too slow to take it all within the send budget: the rest a moment later, not after a backoff', {
    timeout: QUEUE_SEND_BUDGET_MS * 3,
  }, async () => {
    const a = anonId('slow-backlog');
    const stub = profileStub(env, SITE, `anon:${a}`);
    // Four sendBatch calls of 100 messages, each taking 40 % of the budget: two go in time.
    await stub.park(Array.from({ length: 400 }, (_, i) => pageMessage(a, `/p/${i}`)));
    recordQueue(env, { delayMs: QUEUE_SEND_BUDGET_MS * 0.4 });
    await runDurableObjectAlarm(stub);
    expect(await parkedCount(a)).toBeGreaterThan(0);
    expect(await parkedCount(a)).toBeLessThan(400);
    expect(await alarmDueIn(stub)).toBeLessThanOrEqual(1000);
  });
});

describe('a person whose parked messages are all the edge holds', () => {
  it('is found by an access request, which lists the messages', async () => {
    const a = anonId('parked-only');
    expect(await profileStub(env, SITE, `anon:${a}`).park([pageMessage(a)])).toBe(1);
    const res = await people(`anon:${a}`, 'GET', undefined, '&scope=edge');
    expect(res.status).toBe(200);
    const held = (await res.json()) as { parked?: QueueMessage[] };
    expect(held.parked?.map((m) => m.kind)).toEqual(['events']);
  });

  it('is not given a profile by later events that consent drops, and the messages stay', async () => {
    const a = anonId('parked-dropped');
    const stub = profileStub(env, SITE, `anon:${a}`);
    await stub.park([pageMessage(a)]);
    // A server producer's event with no choice on record: dropped for lack of consent.
    const res = await segment('/v1/track', {
      anonymousId: a,
      event: 'Product Viewed',
      properties: { product_id: 'p-1', category: 'outdoor' },
    });
    expect(res.status).toBe(200);
    const kept = await runInDurableObject(stub, (_o: ProfileDO, state) =>
      state.storage.sql
        .exec<{ k: string }>('SELECT k FROM kv ORDER BY k')
        .toArray()
        .map((row) => row.k),
    );
    expect(kept).toEqual(['parked']);
    expect(await parkedCount(a)).toBe(1);
  });
});

describe('a browser that signs in while its messages are parked', () => {
  it('sends its parked events, and not its old snapshot, which would bring back the row the person’s replaced', async () => {
    const a = anonId('parked-merge');
    const userId = `u-${anonId('parked-merge')}`;
    queueDown();
    await collect([productView(a, 'p-1', 'outdoor')]);
    const browser = profileStub(env, SITE, `anon:${a}`);
    const alarmIn = () => alarmDueIn(browser);
    expect(await alarmIn()).toBeLessThanOrEqual(10_000);
    vi.restoreAllMocks();
    const queue = recordQueue();
    await collect([productView(a, 'p-2', 'outdoor', { userId, userIdSignature: await signed(userId) })]);
    // The sign-in's own check of the hand-over comes later; the resend keeps its time.
    expect(await alarmIn()).toBeLessThanOrEqual(10_000);
    queue.messages.length = 0;
    await runDurableObjectAlarm(browser);
    expect(productIdsOf(queue.messages, a)).toEqual(['p-1']);
    expect(queue.messages.filter((m) => m.kind === 'profile').map((m) => m.personId)).toEqual([]);
    expect(await parkedCount(a)).toBe(0);
  });
});

describe('parkingGroups', () => {
  const events = (siteId: string, personId: string): QueueMessage => ({
    kind: 'events',
    siteId,
    personId,
    purposes: ['analytics'],
    events: [],
  });
  const covisits = (siteId: string): QueueMessage => ({ kind: 'covisits', siteId, pairs: [] });

  it('keeps each person’s messages in order, and a co-visit message with the person its request sent', () => {
    const { groups, homeless } = parkingGroups([
      covisits('s1'),
      events('s1', 'anon:a'),
      events('s2', 'user:b'),
      events('s1', 'anon:a'),
      covisits('s2'),
      covisits('s3'),
    ]);
    expect(groups.map((g) => [g.siteId, g.personKey, g.messages.map((m) => m.kind)])).toEqual([
      ['s1', 'anon:a', ['covisits', 'events', 'events']],
      ['s2', 'user:b', ['events', 'covisits']],
    ]);
    expect(homeless.map((m) => m.siteId)).toEqual(['s3']);
  });
});
