/**
 * The queue producer: requests that overlap, each in its own request context as in
 * production, share queue sends, and every request's messages still reach the queue —
 * also when a send is slow and the next requests arrive while it is in flight, when one
 * sendBatch fails, and when one person's profile snapshot is over the queue's message limit.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { eventMessagesOf, type ProfileMessage, type QueueMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { profileStub } from '../identity/index.ts';
import { readStats } from '../observability/index.ts';
import { viewProfile } from '../profile/client.ts';
import type { ProfileDO } from '../profile/profile-do.ts';
import { fitProfileMessage, QUEUE_MESSAGE_BYTES, QueueSendError, sendMessages } from './queue-producer.ts';
import {
  ALL,
  anonId,
  collect,
  makeEvent,
  ORIGIN,
  productView,
  recordQueue,
  SITE,
  WRITE_KEY,
} from './test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

let nextIp = 0;
/**
 * A collect request through the Worker's real entry point: a request context of its own.
 * Each from its own address, as different visitors are (one address would meet its rate limit).
 */
function collectInOwnContext(batch: unknown[]): Promise<Response> {
  nextIp++;
  return exports.default.fetch('http://attune.test/v1/collect', {
    method: 'POST',
    headers: {
      origin: ORIGIN,
      'content-type': 'text/plain;charset=UTF-8',
      'cf-connecting-ip': `198.51.100.${nextIp % 250}`,
    },
    body: JSON.stringify({ writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch }),
  });
}

function threeViews(a: string) {
  return [
    productView(a, 'p-1', 'outdoor'),
    productView(a, 'p-2', 'outdoor'),
    productView(a, 'p-3', 'kitchen'),
  ];
}

async function expectEveryoneSent(calls: QueueMessage[][], people: string[]): Promise<void> {
  const ofPerson = (a: string) =>
    eventMessagesOf(calls.flat())
      .filter((m) => m.event.anonymousId === a)
      .map((m) => m.event.properties?.productId);
  // The sends run after the responses (waitUntil): wait until every event is in, or time out.
  await vi.waitFor(
    () => {
      for (const a of people) expect(ofPerson(a)).toEqual(['p-1', 'p-2', 'p-3']);
    },
    { timeout: 5000, interval: 50 },
  );
}

describe('queue producer', () => {
  it('shares sends among overlapping requests, and sends every message, each person in order', async () => {
    const { calls } = recordQueue(env);
    const people = Array.from({ length: 12 }, (_, i) => anonId(`q${i}`));
    const responses = await Promise.all(people.map((a) => collectInOwnContext(threeViews(a))));
    expect(responses.map((r) => r.status)).toEqual(people.map(() => 200));
    await expectEveryoneSent(calls, people);
    // Fewer sends than requests: they shared.
    expect(calls.length).toBeLessThan(people.length);
  });

  it('sends the messages of requests that arrive while an earlier send is still in flight', async () => {
    // A send waiting on another request's send is a promise settled in another request's
    // context: workerd cancels such continuations, and the messages were silently lost.
    const { calls } = recordQueue(env, { delayMs: 150 });
    const first = Array.from({ length: 6 }, (_, i) => anonId(`w1-${i}`));
    const second = Array.from({ length: 6 }, (_, i) => anonId(`w2-${i}`));
    const wave1 = Promise.all(first.map((a) => collectInOwnContext(threeViews(a))));
    await new Promise((resolve) => setTimeout(resolve, 80));
    const wave2 = Promise.all(second.map((a) => collectInOwnContext(threeViews(a))));
    const statuses = [...(await wave1), ...(await wave2)].map((r) => r.status);
    expect(statuses).toEqual([...first, ...second].map(() => 200));
    await expectEveryoneSent(calls, [...first, ...second]);
  });

  it('retries a failed sendBatch on its own: the messages sent before it are not sent twice', async () => {
    // Twenty events of ~24 KB each: their messages take two sendBatch calls (256 KB each at most).
    const sent: QueueMessage[][] = [];
    let attempts = 0;
    vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async (items) => {
      attempts++;
      if (attempts === 2) throw new Error('queue hiccup');
      sent.push([...items].map((item) => item.body as QueueMessage));
      return undefined as unknown as QueueSendBatchResponse;
    });
    const a = anonId('large-batch');
    const filler = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`note${i}`, 'x'.repeat(4000)]));
    const batch = Array.from({ length: 20 }, (_, i) =>
      productView(a, `p-${i}`, 'outdoor', {
        properties: { productId: `p-${i}`, category: 'outdoor', ...filler },
      }),
    );
    expect((await collectInOwnContext(batch)).status).toBe(200);
    const productIds = () =>
      eventMessagesOf(sent.flat())
        .filter((m) => m.event.anonymousId === a)
        .map((m) => m.event.properties?.productId);
    await vi.waitFor(() => expect(productIds()).toHaveLength(20), { timeout: 5000, interval: 50 });
    // Every event once: before, the retry sent the first call's messages (and co-visits) again.
    expect(new Set(productIds()).size).toBe(20);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(attempts).toBe(sent.length + 1);
  });

  it('sends everyone else’s messages when one person’s profile snapshot is over the queue’s message limit', async () => {
    // The real (local) queue, which refuses a message over 128 KB: what it took is recorded.
    const taken: QueueMessage[][] = [];
    const realSendBatch = env.EVENTS.sendBatch.bind(env.EVENTS);
    vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async (items) => {
      const call = [...items];
      const response = await realSendBatch(call);
      taken.push(call.map((item) => item.body as QueueMessage));
      return response;
    });
    const failedBefore = (await readStats(env)).queue_failed;
    // Visitor A: a consent choice and a small trait, through ingest.
    const a = anonId('big-traits');
    const choice = makeEvent(a, 'consent.updated', {
      properties: { categories: ALL.categories, policyVersion: ALL.policyVersion },
    });
    const plan = makeEvent(a, 'profile.updated', { traits: { plan: 'gold' } });
    expect((await collect([choice, plan])).status).toBe(200);
    // And five traits of 7 × 4,000 characters each (~140 KB), as a profile stored before
    // traits were bounded holds them (the profile model now keeps 16 KB at most; the queue
    // must hold whatever a profile holds).
    const person = profileStub(env, SITE, `anon:${a}`);
    await runInDurableObject(person, (_object: ProfileDO, state) => {
      const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'profile'").one();
      const stored = JSON.parse(row.v) as { traits: Record<string, unknown> };
      for (let k = 0; k < 5; k++)
        stored.traits[`note${k}`] = Array.from({ length: 7 }, () => 'x'.repeat(4000));
      state.storage.sql.exec("UPDATE kv SET v = ? WHERE k = 'profile'", JSON.stringify(stored));
    });
    // The object keeps its profile parsed in memory; its (retention) alarm reads storage again.
    expect(await runDurableObjectAlarm(person)).toBe(true);
    expect(Object.keys((await viewProfile(env, SITE, `anon:${a}`))?.traits ?? {})).toContain('note4');
    // One request carries one more event of A's and two of a new visitor B's: one shared send.
    const b = anonId('bystander');
    const res = await collect([
      productView(a, 'p-a', 'shoes'),
      productView(b, 'p-b1', 'hats'),
      productView(b, 'p-b2', 'hats'),
    ]);
    expect(res.status).toBe(200);
    const viewsOf = (who: string) =>
      eventMessagesOf(taken.flat())
        .filter((m) => m.event.anonymousId === who && m.event.name === 'product.viewed')
        .map((m) => m.event.properties?.productId);
    expect(viewsOf(b)).toEqual(['p-b1', 'p-b2']);
    expect(viewsOf(a)).toEqual(['p-a']);
    // A's snapshot still went, fitted to one message (without the traits that made it too
    // large, however many of them the profile keeps), with the rest.
    const snapshots = taken
      .flat()
      .filter((m): m is ProfileMessage => m.kind === 'profile' && m.personId === `anon:${a}`);
    const latest = snapshots.at(-1);
    expect(JSON.stringify(latest).length).toBeLessThanOrEqual(QUEUE_MESSAGE_BYTES);
    expect(latest?.profile.anonymousIds).toEqual([a]);
    expect(latest?.profile.traits).toMatchObject({ plan: 'gold' });
    expect(Object.keys(latest?.profile.interests ?? {})).toContain('category:shoes');
    expect(latest?.profile.consent?.categories.personalization).toBe(true);
    expect((await readStats(env)).queue_failed).toBe(failedBefore);
  });

  it('sends the chunks after one that fails, and reports only the unsent', async () => {
    const sent: QueueMessage[] = [];
    let calls = 0;
    vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async (items) => {
      calls++;
      // The first chunk is refused, also when retried.
      if (calls <= 2) throw new Error('queue refused');
      sent.push(...[...items].map((item) => item.body as QueueMessage));
      return undefined as unknown as QueueSendBatchResponse;
    });
    // 150 small messages: two chunks (at most 100 messages a sendBatch).
    const messages: QueueMessage[] = Array.from({ length: 150 }, (_, i) => ({
      kind: 'covisit',
      siteId: 'demo',
      from: `p-${i}`,
      to: `p-${i + 1}`,
      at: new Date().toISOString(),
    }));
    const error = await sendMessages(env.EVENTS, messages).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueSendError);
    expect(error instanceof QueueSendError ? error.unsent.length : 0).toBe(100);
    expect(sent).toEqual(messages.slice(100));
  });

  it('never puts a message over the per-message budget into a sendBatch with others', async () => {
    const { calls } = recordQueue(env);
    const at = new Date().toISOString();
    const before: QueueMessage = { kind: 'covisit', siteId: 'demo', from: 'p-1', to: 'p-2', at };
    const after: QueueMessage = { kind: 'covisit', siteId: 'demo', from: 'p-2', to: 'p-3', at };
    // A co-visit list no ingest request makes (400 pairs of long ids): ~110 KB of JSON, under
    // a sendBatch's 256 KB but over what one message may hold as the queue serializes it.
    const huge: QueueMessage = {
      kind: 'covisits',
      siteId: 'demo',
      pairs: Array.from({ length: 400 }, (_, i) => ({
        from: `p-${i}-${'f'.repeat(120)}`,
        to: `p-${i}-${'t'.repeat(120)}`,
        at,
      })),
    };
    await sendMessages(env.EVENTS, [before, huge, after]);
    expect(calls).toEqual([[before], [huge], [after]]);
  });

  it('fits a snapshot with thousands of counters by leaving out the largest, keeping the rest', () => {
    const counters = Object.fromEntries(
      Array.from({ length: 3000 }, (_, i) => [`viewed:${'c'.repeat(i % 40)}-${i}`, i]),
    );
    const snapshot: ProfileMessage = {
      kind: 'profile',
      siteId: 'demo',
      personId: 'anon:many-counters',
      version: 7,
      profile: {
        anonymousIds: ['many-counters'],
        traits: { plan: 'gold' },
        interests: { 'category:shoes': 0.5 },
        segments: ['engaged'],
        counters,
        consent: ALL,
        firstSeen: '2026-01-01T00:00:00.000Z',
        lastSeen: '2026-01-02T00:00:00.000Z',
      },
    };
    expect(JSON.stringify(snapshot).length).toBeGreaterThan(QUEUE_MESSAGE_BYTES);
    const { message, omitted } = fitProfileMessage(snapshot);
    expect(new TextEncoder().encode(JSON.stringify(message)).byteLength).toBeLessThanOrEqual(
      QUEUE_MESSAGE_BYTES,
    );
    expect(omitted).toBeGreaterThan(0);
    const kept = Object.keys(message.profile.counters);
    expect(kept.length).toBe(3000 - omitted);
    // The shortest names stay; everything else is the snapshot as it was.
    expect(kept).toContain('viewed:-0');
    expect({ ...message, profile: { ...message.profile, counters: {} } }).toEqual({
      ...snapshot,
      profile: { ...snapshot.profile, counters: {} },
    });
    // A snapshot that fits is sent as it is.
    const small = { ...snapshot, profile: { ...snapshot.profile, counters: { views: 3 } } };
    expect(fitProfileMessage(small)).toEqual({ message: small, omitted: 0 });
  });
});
