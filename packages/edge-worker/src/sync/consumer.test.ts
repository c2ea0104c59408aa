/**
 * The queue consumer's handling of `events` messages (one per person and purposes per
 * ingest run): their events share the bulk writes with old single `event` messages; a
 * rejected or malformed event is dead-lettered alone and the rest are written; the whole
 * message is retried while Directus is unavailable; erasure in the same batch wins.
 *
 * And of "viewed next" pairs: one `covisits` message per
 * ingest request counts as all of its pairs, settles as one message (acked once, or
 * retried as a whole), and a malformed one is dead-lettered; single `covisit` messages
 * (from before the batched form) still count. No Directus call is needed for pairs, and a
 * message delivered again (its batch redelivered, a shard failing) is counted once.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  applyCovisits,
  type CovisitDelivery,
  clearCovisitCache,
  covisitShard,
  readCovisits,
} from '../decide/covisitation.ts';
import { directusClient } from '../directus/client.ts';
import { QUEUE_SEND_BUDGET_MS } from '../ingest/queue-producer.ts';
import { stuckQueueCall } from '../ingest/test-support.ts';
import { eraseProfile, ingestProfile } from '../profile/client.ts';
import { type ErasureCheck, syncBatch } from './consumer.ts';

const noDirectus = directusClient({
  url: 'http://directus.invalid',
  token: 't',
  fetch: async () => {
    throw new Error('pairs must not reach Directus');
  },
});

/** A Directus that answers the sync's event writes with this error, and every read with no rows. */
const eventsRefused = (status: number, message: string, code: string) =>
  directusClient({
    url: 'http://directus.test',
    token: 't',
    fetch: async (url) =>
      String(url).includes('/attune-sync/events')
        ? Response.json({ errors: [{ message, extensions: { code } }] }, { status })
        : Response.json({ data: [] }),
  });

/** The lines the code under test warns, from now on (console.warn is restored after each test). */
function warnings(): string[] {
  const warned: string[] = [];
  vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
    warned.push(String(line));
  });
  return warned;
}

const at = '2026-11-26T09:00:00.000Z';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('covisit pairs in the consumer', () => {
  it('counts every pair of a covisits message and of single covisit messages, acking each message once', async () => {
    const applied: CovisitDelivery[][] = [];
    const batch = createMessageBatch('attune-events', [
      {
        id: 'pairs-1',
        timestamp: new Date(),
        attempts: 1,
        body: {
          kind: 'covisits',
          siteId: 'demo',
          pairs: [
            { from: 'p1', to: 'p2', at },
            { from: 'p2', to: 'p3', at },
          ],
        },
      },
      {
        id: 'pair-old',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisit', siteId: 'demo', from: 'p9', to: 'p1', at },
      },
    ]);
    const report = await syncBatch(batch, env, {
      directus: noDirectus,
      applyCovisits: async (_env, messages) => {
        applied.push(messages);
        return messages.length;
      },
    });
    expect(applied).toEqual([
      [
        {
          messageId: 'pairs-1',
          visits: [
            { kind: 'covisit', siteId: 'demo', from: 'p1', to: 'p2', at },
            { kind: 'covisit', siteId: 'demo', from: 'p2', to: 'p3', at },
          ],
        },
        { messageId: 'pair-old', visits: [{ kind: 'covisit', siteId: 'demo', from: 'p9', to: 'p1', at }] },
      ],
    ]);
    expect(report).toMatchObject({ acked: 2, retried: 0, deadLettered: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['pair-old', 'pairs-1']);
  });

  it('retries the whole message when counting fails, and dead-letters a malformed one', async () => {
    const letters: unknown[] = [];
    vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(async (body) => {
      letters.push(body);
      return undefined as unknown as QueueSendResponse;
    });
    const batch = createMessageBatch('attune-events', [
      {
        id: 'pairs-2',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: 'p1', to: 'p2', at }] },
      },
      {
        id: 'pairs-bad',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: '', to: 'p2', at }] },
      },
    ]);
    const report = await syncBatch(batch, env, {
      directus: noDirectus,
      applyCovisits: async () => {
        throw new Error('CovisitationDO unavailable');
      },
    });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 1 });
    expect(letters).toEqual([
      expect.objectContaining({ messageId: 'pairs-bad', reason: expect.stringContaining('pairs.0.from') }),
    ]);
  });
});

describe('covisit pairs delivered again', () => {
  /** What decisions read for `froms` now (not from the isolate cache). */
  const counts = async (siteId: string, froms: string[]) => {
    clearCovisitCache();
    const next = await readCovisits(env, siteId, froms, 1000);
    return Object.fromEntries(froms.map((from) => [from, next.get(from)]));
  };
  const pairsMessage = (siteId: string, pairs: [string, string][]) => ({
    kind: 'covisits',
    siteId,
    pairs: pairs.map(([from, to]) => ({ from, to, at })),
  });

  it('a redelivered batch leaves the counts as its first delivery made them, while Directus is down for its events', async () => {
    const site = 'redelivered-batch';
    const { client } = eventsDirectus({ down: true });
    const messages = (attempts: number) => [
      { id: 'ingest-run-1', timestamp: new Date(), attempts, body: pairsMessage(site, [['tent', 'stove']]) },
      {
        id: 'ingest-run-1-events',
        timestamp: new Date(),
        attempts,
        body: eventsBody([eventItem('product.viewed')]),
      },
    ];
    const first = createMessageBatch<unknown>('attune-events', messages(1));
    const options = { directus: client, isErased: nobodyErased().check, applyCovisits };
    await syncBatch(first, env, options);
    // The pairs are acked on their own; the events wait for Directus.
    const settled = await getQueueResult(first, createExecutionContext());
    expect(settled.explicitAcks).toEqual(['ingest-run-1']);
    expect(settled.retryMessages.map((m) => m.msgId)).toEqual(['ingest-run-1-events']);
    expect(await counts(site, ['tent'])).toEqual({ tent: [{ to: 'stove', count: 1 }] });

    // The queue delivers the whole batch again (at-least-once): the pairs are not counted again.
    await syncBatch(createMessageBatch<unknown>('attune-events', messages(2)), env, options);
    expect(await counts(site, ['tent'])).toEqual({ tent: [{ to: 'stove', count: 1 }] });
  });

  it('a message retried because one shard failed is counted once in every shard', async () => {
    const site = 'redelivered-shard';
    const other = ['boots', 'socks', 'laces', 'insoles'].find(
      (p) => covisitShard(site, p) !== covisitShard(site, 'tent'),
    );
    if (other === undefined) throw new Error('no product in another shard');
    const delivery = (attempts: number) =>
      createMessageBatch<unknown>('attune-events', [
        {
          id: 'ingest-run-2',
          timestamp: new Date(),
          attempts,
          body: pairsMessage(site, [
            ['tent', 'stove'],
            [other, 'tent'],
          ]),
        },
      ]);
    const unavailable = env.COVISITATION.idFromName(`${site}/covisit/${covisitShard(site, other)}`);
    const get = env.COVISITATION.get.bind(env.COVISITATION);
    const failing = vi
      .spyOn(env.COVISITATION, 'get')
      .mockImplementation((id) =>
        id.equals(unavailable)
          ? ({ record: async () => Promise.reject(new Error('shard unavailable')) } as unknown as ReturnType<
              typeof get
            >)
          : get(id),
      );
    const first = delivery(1);
    expect(await syncBatch(first, env, { directus: noDirectus, applyCovisits })).toMatchObject({
      retried: 1,
    });
    failing.mockRestore();
    expect(await syncBatch(delivery(2), env, { directus: noDirectus, applyCovisits })).toMatchObject({
      acked: 1,
    });
    expect(await counts(site, ['tent', other])).toEqual({
      tent: [{ to: 'stove', count: 1 }],
      [other]: [{ to: 'tent', count: 1 }],
    });
  });
});

/** A scripted Directus for the events endpoint: rejects rows named `poison.pill`, or is down. */
function eventsDirectus(options: { down?: boolean } = {}) {
  const written = new Set<string>();
  const requests: number[] = [];
  const client = directusClient({
    url: 'http://directus.test',
    token: 't',
    fetch: async (url, init) => {
      if (options.down) return new Response('{"errors":[{"message":"unavailable"}]}', { status: 503 });
      // Erasure's reads find nothing and its proof is stored.
      if (!String(url).includes('/attune-sync/events')) return Response.json({ data: [] });
      const rows = JSON.parse(String(init?.body)) as { id: string; name: string }[];
      requests.push(rows.length);
      // As the real endpoint: at most 1000 rows a request.
      if (rows.length > 1000)
        return Response.json({ errors: [{ message: 'too many rows' }] }, { status: 400 });
      if (rows.some((r) => r.name === 'poison.pill'))
        return Response.json({ errors: [{ message: 'value too long for name' }] }, { status: 400 });
      let created = 0;
      for (const r of rows) {
        if (written.has(r.id)) continue;
        written.add(r.id);
        created++;
      }
      return Response.json({ data: { created } });
    },
  });
  return { client, written, requests };
}

let seq = 0;
function eventItem(name = 'page.viewed') {
  seq++;
  const id = `01JDZ0000000000000000${String(seq).padStart(5, '0')}`;
  return {
    event: { id, type: 'track', name, timestamp: at, anonymousId: 'a-1', schemaVersion: 1 },
    enrichment: { receivedAt: at, correctedTimestamp: at, device: 'desktop' },
  };
}

/** An event whose receive time is not a date-time: the sync dead-letters it alone. */
function eventWithBadTime(): ReturnType<typeof eventItem> {
  const item = eventItem();
  item.enrichment = { ...item.enrichment, receivedAt: 'yesterday' };
  return item;
}

function eventsBody(items: ReturnType<typeof eventItem>[], personId = 'anon:a-1') {
  return {
    kind: 'events',
    siteId: 'demo',
    personId,
    purposes: ['analytics', 'marketing'],
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    events: items,
  };
}

/** An erasure check that finds nobody erased, and records whom it was asked about. */
function nobodyErased(): { check: ErasureCheck; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    check: async (_env, _site, key) => {
      asked.push(key);
      return false;
    },
  };
}

function recordDlq(): { reason: string; messageId: string; body: unknown }[] {
  const letters: { reason: string; messageId: string; body: unknown }[] = [];
  vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(async (body) => {
    letters.push(body as (typeof letters)[number]);
    return undefined as unknown as QueueSendResponse;
  });
  return letters;
}

describe('events messages in the consumer', () => {
  it('writes the events of events messages and old single event messages in one bulk write, acking each message once', async () => {
    const { client, written, requests } = eventsDirectus();
    const run = [eventItem(), eventItem(), eventItem()];
    const single = eventItem();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'run-1', timestamp: new Date(), attempts: 1, body: eventsBody(run) },
      {
        id: 'old-1',
        timestamp: new Date(),
        attempts: 1,
        body: {
          kind: 'event',
          siteId: 'demo',
          personId: 'anon:a-1',
          purposes: ['analytics'],
          ...single,
        },
      },
    ]);
    const report = await syncBatch(batch, env, { directus: client });
    expect(report).toMatchObject({ acked: 2, retried: 0, deadLettered: 0, eventsWritten: 4 });
    expect(requests).toEqual([4]);
    expect([...written].sort()).toEqual([...run, single].map((i) => i.event.id).sort());
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['old-1', 'run-1']);
    expect(result.retryMessages).toEqual([]);
  });

  it('writes a batch holding more events than one request may carry in several requests', async () => {
    const { client, written, requests } = eventsDirectus();
    const runs = Array.from({ length: 11 }, () => Array.from({ length: 100 }, () => eventItem()));
    const batch = createMessageBatch<unknown>(
      'attune-events',
      runs.map((run, i) => ({ id: `big-${i}`, timestamp: new Date(), attempts: 1, body: eventsBody(run) })),
    );
    const report = await syncBatch(batch, env, { directus: client });
    expect(report).toMatchObject({ acked: 11, retried: 0, deadLettered: 0, eventsWritten: 1100 });
    expect(requests).toEqual([1000, 100]);
    expect(written.size).toBe(1100);
  });

  it('dead-letters only the event Directus rejects, with its reason, and acks the message once the rest are written', async () => {
    const letters = recordDlq();
    const { client, written } = eventsDirectus();
    const good = [eventItem(), eventItem()];
    const [first, second] = good;
    const bad = eventItem('poison.pill');
    const batch = createMessageBatch<unknown>('attune-events', [
      {
        id: 'run-2',
        timestamp: new Date(),
        attempts: 1,
        body: eventsBody([first, bad, second].filter((i) => i !== undefined)),
      },
    ]);
    const report = await syncBatch(batch, env, { directus: client });
    expect(report).toMatchObject({ acked: 1, retried: 0, deadLettered: 1, eventsWritten: 2 });
    expect([...written].sort()).toEqual(good.map((i) => i.event?.id).sort());
    expect(letters).toHaveLength(1);
    expect(letters[0]?.messageId).toBe('run-2');
    expect(letters[0]?.reason).toMatch(/Directus rejected the events row: .*value too long/);
    // The letter carries that one event as a single event message, replayable as it is.
    expect(letters[0]?.body).toEqual({
      kind: 'event',
      siteId: 'demo',
      personId: 'anon:a-1',
      purposes: ['analytics', 'marketing'],
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      ...bad,
    });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(['run-2']);
  });

  it('dead-letters a malformed event alone and writes the others of its message', async () => {
    const letters = recordDlq();
    const { client, written } = eventsDirectus();
    const good = eventItem();
    const malformed = { event: { id: 'not-a-ulid', type: 'track' }, enrichment: good.enrichment };
    const badTime = eventWithBadTime();
    const batch = createMessageBatch<unknown>('attune-events', [
      {
        id: 'run-3',
        timestamp: new Date(),
        attempts: 1,
        body: { ...eventsBody([good]), events: [good, malformed, badTime] },
      },
    ]);
    const report = await syncBatch(batch, env, { directus: client });
    expect(report).toMatchObject({ acked: 1, deadLettered: 2, eventsWritten: 1 });
    expect([...written]).toEqual([good.event.id]);
    expect(letters.map((l) => (l.body as { event: { id: string } }).event.id)).toEqual([
      'not-a-ulid',
      badTime.event.id,
    ]);
    expect(letters[0]?.reason).toMatch(/invalid queue message at events item: event/);
    expect(letters[1]?.reason).toMatch(/enrichment.receivedAt is not a date-time/);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(['run-3']);
  });

  it('dead-letters a bad event once, not once per delivery, when the rest of its message is retried', async () => {
    const letters = recordDlq();
    const good = eventItem();
    const badTime = eventWithBadTime();
    const delivery = (attempts: number) =>
      createMessageBatch<unknown>('attune-events', [
        { id: 'run-5', timestamp: new Date(), attempts, body: eventsBody([good, badTime]) },
      ]);

    const down = delivery(1);
    const { check, asked } = nobodyErased();
    const report = await syncBatch(down, env, {
      directus: eventsDirectus({ down: true }).client,
      isErased: check,
    });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
    // Asked once, before the writes: nothing was written (the good event's write failed, the
    // bad one waits for the message), so nobody is asked again after them.
    expect(asked).toHaveLength(1);
    expect(letters).toEqual([]);
    const downResult = await getQueueResult(down, createExecutionContext());
    expect(downResult.retryMessages.map((m) => m.msgId)).toEqual(['run-5']);

    const up = eventsDirectus();
    const again = delivery(2);
    expect(await syncBatch(again, env, { directus: up.client })).toMatchObject({
      acked: 1,
      retried: 0,
      deadLettered: 1,
      eventsWritten: 1,
    });
    expect(letters.map((l) => (l.body as { event: { id: string } }).event.id)).toEqual([badTime.event.id]);
    expect([...up.written]).toEqual([good.event.id]);
    expect((await getQueueResult(again, createExecutionContext())).explicitAcks).toEqual(['run-5']);
  });

  it('retries, and sends no letter, when the DLQ fails for a bad event of a message', async () => {
    vi.spyOn(env.EVENTS_DLQ, 'send').mockRejectedValue(new Error('DLQ unavailable'));
    const good = eventItem();
    const badTime = eventWithBadTime();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'run-6', timestamp: new Date(), attempts: 1, body: eventsBody([good, badTime]) },
    ]);
    const report = await syncBatch(batch, env, { directus: eventsDirectus().client });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(['run-6']);
    expect(result.explicitAcks).toEqual([]);
  });

  it('retries the whole message while Directus is unavailable; redelivery writes each event once', async () => {
    const run = [eventItem(), eventItem()];
    const down = createMessageBatch<unknown>('attune-events', [
      { id: 'run-4', timestamp: new Date(), attempts: 1, body: eventsBody(run) },
    ]);
    const { check, asked } = nobodyErased();
    const report = await syncBatch(down, env, {
      directus: eventsDirectus({ down: true }).client,
      isErased: check,
    });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
    // Asked once, before the write: nothing was written, so nobody is asked again after it.
    expect(asked).toHaveLength(1);
    const downResult = await getQueueResult(down, createExecutionContext());
    expect(downResult.retryMessages.map((m) => m.msgId)).toEqual(['run-4']);
    expect(downResult.explicitAcks).toEqual([]);

    const up = eventsDirectus();
    const again = () =>
      createMessageBatch<unknown>('attune-events', [
        { id: 'run-4', timestamp: new Date(), attempts: 2, body: eventsBody(run) },
      ]);
    expect(await syncBatch(again(), env, { directus: up.client })).toMatchObject({
      acked: 1,
      eventsWritten: 2,
    });
    expect(await syncBatch(again(), env, { directus: up.client })).toMatchObject({
      acked: 1,
      eventsWritten: 0,
    });
    expect([...up.written].sort()).toEqual(run.map((i) => i.event.id).sort());
  });

  it('stops writing row by row when Directus is down, retrying the rest of the batch without a request each', async () => {
    const writes: string[] = [];
    const down = directusClient({
      url: 'http://directus.test',
      token: 't',
      fetch: async (url) => {
        if (String(url).includes('/attune-sync/events')) writes.push(String(url));
        // The erasure check's reads and every write: a proxy whose Directus is gone.
        return String(url).includes('/attune-sync/events')
          ? new Response('bad gateway', { status: 502 })
          : Response.json({ data: [] });
      },
    });
    // Delivered three times already: a failing bulk write is split to find a poison row.
    const batch = createMessageBatch<unknown>(
      'attune-events',
      Array.from({ length: 6 }, (_, i) => ({
        id: `outage-${i}`,
        timestamp: new Date(),
        attempts: 3,
        body: eventsBody([eventItem(), eventItem()], `anon:outage-${i}`),
      })),
    );
    const report = await syncBatch(batch, env, { directus: down, isErased: nobodyErased().check });
    expect(report).toMatchObject({ acked: 0, retried: 6, deadLettered: 0 });
    // The bulk write, then the first row alone: not one more request per message.
    expect(writes).toHaveLength(2);
  });

  it('acks without writing the events of a person erased in the same batch', async () => {
    const erased = createMessageBatch<unknown>('attune-events', [
      {
        id: 'run-5',
        timestamp: new Date(),
        attempts: 1,
        body: eventsBody([eventItem(), eventItem()], 'anon:gone'),
      },
      {
        id: 'erase-5',
        timestamp: new Date(),
        attempts: 1,
        body: {
          kind: 'erasure',
          siteId: 'demo',
          personId: 'anon:gone',
          anonymousIds: ['gone'],
          requestedAt: at,
        },
      },
    ]);
    const { client, written } = eventsDirectus();
    const report = await syncBatch(erased, env, { directus: client });
    expect(written.size).toBe(0);
    expect(report.eventsWritten).toBe(0);
    const result = await getQueueResult(erased, createExecutionContext());
    expect(report).toMatchObject({ erasures: 1, retried: 0 });
    expect(result.explicitAcks.sort()).toEqual(['erase-5', 'run-5']);
  });

  it('writes what a person erased in the same batch sent after the erasure was requested, unless their tombstone stands', async () => {
    // A retention erasure leaves no tombstone: the person may come back while it is queued.
    // A `DELETE` leaves one: what reached the queue after it goes nowhere.
    const later = new Date(Date.parse(at) + 60_000).toISOString();
    const erasedAt = (person: string) => ({
      kind: 'erasure',
      siteId: 'demo',
      personId: person,
      anonymousIds: [person.slice(5)],
      requestedAt: at,
    });
    const before = eventItem();
    const receivedLater = () => ({
      ...eventItem(),
      enrichment: { receivedAt: later, correctedTimestamp: later, device: 'desktop' },
    });
    const after = receivedLater();
    const tombstoned = receivedLater();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'back-1', timestamp: new Date(), attempts: 1, body: eventsBody([before, after], 'anon:back') },
      { id: 'erase-back', timestamp: new Date(), attempts: 1, body: erasedAt('anon:back') },
      { id: 'gone-2', timestamp: new Date(), attempts: 1, body: eventsBody([tombstoned], 'anon:gone-2') },
      { id: 'erase-gone-2', timestamp: new Date(), attempts: 1, body: erasedAt('anon:gone-2') },
    ]);
    const { client, written } = eventsDirectus();
    const report = await syncBatch(batch, env, {
      directus: client,
      isErased: async (_env, _site, key) => key === 'anon:gone-2',
    });
    expect([...written]).toEqual([after.event.id]);
    expect(report).toMatchObject({ erasures: 2, eventsWritten: 1, retried: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['back-1', 'erase-back', 'erase-gone-2', 'gone-2']);
  });

  it('acks without writing what was queued for a person before their erasure and arrives after it', async () => {
    // The person's ProfileDO holds events; the erasure (admin request) leaves its tombstone
    // and queues the erasure message, which a batch before this one already applied.
    const person = `gone-before-${crypto.randomUUID()}`;
    const keeper = `still-here-${crypto.randomUUID()}`;
    for (const id of [person, keeper])
      await ingestProfile(env, 'demo', `anon:${id}`, [
        {
          event: { ...eventItem().event, type: 'page', anonymousId: id, schemaVersion: 1 },
          enrichment: { receivedAt: at, correctedTimestamp: at },
          personalization: true,
          consent: { categories: { analytics: true, personalization: true }, policyVersion: '1' },
        },
      ]);
    await eraseProfile(env, 'demo', `anon:${person}`);
    const late = eventItem();
    const kept = eventItem();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'late-1', timestamp: new Date(), attempts: 2, body: eventsBody([late], `anon:${person}`) },
      { id: 'kept-1', timestamp: new Date(), attempts: 1, body: eventsBody([kept], `anon:${keeper}`) },
    ]);
    const { client, written } = eventsDirectus();
    const report = await syncBatch(batch, env, { directus: client });
    expect([...written]).toEqual([kept.event.id]);
    expect(report).toMatchObject({ eventsWritten: 1, retried: 0, deadLettered: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['kept-1', 'late-1']);
  });

  it("sends no letter for an erased person's bad events, whether or not their message holds good ones", async () => {
    const letters = recordDlq();
    const person = `anon:gone-${crypto.randomUUID()}`;
    // A person with no good event anywhere in the batch is named only by the envelope.
    const other = `anon:gone-${crypto.randomUUID()}`;
    const good = eventItem();
    const bad = eventWithBadTime();
    const onlyBad = eventWithBadTime();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'gone-mixed', timestamp: new Date(), attempts: 1, body: eventsBody([good, bad], person) },
      { id: 'gone-bad', timestamp: new Date(), attempts: 1, body: eventsBody([onlyBad], other) },
    ]);
    const { client, written } = eventsDirectus();
    const report = await syncBatch(batch, env, {
      directus: client,
      isErased: async (_env, _site, key) => key === person || key === other,
    });
    expect(letters).toEqual([]);
    expect(written.size).toBe(0);
    expect(report).toMatchObject({ deadLettered: 0, retried: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['gone-bad', 'gone-mixed']);
  });

  it('dead-letters a malformed message whose envelope names a person no event could have, without asking about them', async () => {
    const letters = recordDlq();
    const bad = eventWithBadTime();
    const huge = `anon:${'x'.repeat(100_000)}`;
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'huge-person', timestamp: new Date(), attempts: 1, body: eventsBody([bad], huge) },
    ]);
    const { check, asked } = nobodyErased();
    const report = await syncBatch(batch, env, { directus: eventsDirectus().client, isErased: check });
    expect(asked).toEqual([]);
    expect(report).toMatchObject({ deadLettered: 1, retried: 0 });
    expect(letters).toHaveLength(1);
  });

  it('retries a message holding a bad event, and sends no letter, when its person cannot be asked again after the write', async () => {
    const letters = recordDlq();
    const { client, written } = eventsDirectus();
    const good = eventItem();
    const badTime = eventWithBadTime();
    const batch = createMessageBatch<unknown>('attune-events', [
      {
        id: 'unsure-2',
        timestamp: new Date(),
        attempts: 1,
        body: eventsBody([good, badTime], 'anon:unsure-2'),
      },
    ]);
    let asked = 0;
    const report = await syncBatch(batch, env, {
      directus: client,
      isErased: async () => {
        asked++;
        if (asked > 1) throw new Error('Durable Object unavailable');
        return false;
      },
    });
    // Written, but not confirmed: the redelivery asks again (and deletes the row if the person
    // was erased meanwhile); its bad event is judged again then.
    expect([...written]).toEqual([good.event.id]);
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
    expect(letters).toEqual([]);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(['unsure-2']);
    expect(result.explicitAcks).toEqual([]);
  });

  it('logs why it dead-lettered without the value Directus quoted (a person key, a user id)', async () => {
    // Directus puts the offending value in its messages (RecordNotUnique, ValueTooLong,
    // InvalidForeignKey: `Value "…" for field …`). Kept in Workers Logs, the line would name
    // the person; the letter kept in Directus holds the whole reason.
    const letters = recordDlq();
    const rejecting = eventsRefused(
      400,
      'Value "anon:alice@example.com" for field "person_id" in collection "events" has to be unique.',
      'RECORD_NOT_UNIQUE',
    );
    const warned = warnings();
    const batch = createMessageBatch<unknown>('attune-events', [
      {
        id: 'quoted-1',
        timestamp: new Date(),
        attempts: 1,
        body: eventsBody([eventItem()], 'anon:alice@example.com'),
      },
    ]);
    const report = await syncBatch(batch, env, { directus: rejecting, isErased: nobodyErased().check });
    expect(report).toMatchObject({ deadLettered: 1 });
    expect(letters[0]?.reason).toContain('anon:alice@example.com');
    const line = warned.find((w) => w.includes('sync.dead_lettered')) ?? '';
    expect(line).toContain('for field \\"person_id\\" in collection \\"events\\" has to be unique');
    expect(warned.join('\n')).not.toContain('alice@example.com');
  });

  it('says in its log why it retried: a Directus that refuses the token is named, not only counted', async () => {
    // A deployment's first sync fails for a wrong DIRECTUS_URL or DIRECTUS_TOKEN; the
    // operator has only this log line to learn which, and the retries go on for a day.
    const refusing = eventsRefused(401, 'Invalid user credentials.', 'INVALID_CREDENTIALS');
    const warned = warnings();
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'token-1', timestamp: new Date(), attempts: 1, body: eventsBody([eventItem()], 'anon:token') },
    ]);
    const report = await syncBatch(batch, env, { directus: refusing, isErased: nobodyErased().check });
    expect(report).toMatchObject({ acked: 0, retried: 1 });
    const line = warned
      .map((w) => JSON.parse(w) as Record<string, unknown>)
      .find((w) => w.msg === 'sync.batch');
    expect(line?.cause).toBe('Directus POST /attune-sync/events → 401: Invalid user credentials.');
  });

  it('retries the messages of a person whose erasure cannot be checked', async () => {
    const batch = createMessageBatch<unknown>('attune-events', [
      { id: 'unsure-1', timestamp: new Date(), attempts: 1, body: eventsBody([eventItem()], 'anon:unsure') },
    ]);
    const { client, written } = eventsDirectus();
    const report = await syncBatch(batch, env, {
      directus: client,
      isErased: async () => {
        throw new Error('Durable Object unavailable');
      },
    });
    expect(written.size).toBe(0);
    expect(report).toMatchObject({ eventsWritten: 0, retried: 1 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(['unsure-1']);
  });
});

describe('a dead-letter queue whose sends never settle', () => {
  // Each test waits out QUEUE_SEND_BUDGET_MS once, in real time: what is at stake is the
  // runtime holding the batch, so nothing is faked but the stuck queue.
  const patience = { timeout: QUEUE_SEND_BUDGET_MS * 3 };

  it(
    'retries a malformed message instead of holding the batch; the others are settled',
    patience,
    async () => {
      const send = vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(() => stuckQueueCall());
      const batch = createMessageBatch('attune-events', [
        {
          id: 'pairs-fine',
          timestamp: new Date(),
          attempts: 1,
          body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: 'p1', to: 'p2', at }] },
        },
        {
          id: 'pairs-malformed',
          timestamp: new Date(),
          attempts: 1,
          body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: '', to: 'p2', at }] },
        },
      ]);
      const report = await syncBatch(batch, env, {
        directus: noDirectus,
        applyCovisits: async () => undefined,
      });
      expect(send).toHaveBeenCalledTimes(1);
      expect(report).toMatchObject({ acked: 1, retried: 1, deadLettered: 0 });
      const result = await getQueueResult(batch, createExecutionContext());
      expect(result.explicitAcks).toEqual(['pairs-fine']);
      expect(result.retryMessages.map((m) => m.msgId)).toEqual(['pairs-malformed']);
    },
  );

  it(
    'retries a message whose bad event’s letter is held, once its good events are written',
    patience,
    async () => {
      vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(() => stuckQueueCall());
      const good = eventItem();
      const badTime = eventWithBadTime();
      const batch = createMessageBatch<unknown>('attune-events', [
        { id: 'run-stuck-dlq', timestamp: new Date(), attempts: 1, body: eventsBody([good, badTime]) },
      ]);
      const { client, written } = eventsDirectus();
      const report = await syncBatch(batch, env, { directus: client, isErased: nobodyErased().check });
      expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
      expect([...written]).toEqual([good.event.id]);
      const result = await getQueueResult(batch, createExecutionContext());
      expect(result.retryMessages.map((m) => m.msgId)).toEqual(['run-stuck-dlq']);
      expect(result.explicitAcks).toEqual([]);
    },
  );
});
