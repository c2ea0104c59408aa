/**
 * The queue consumer against a real Directus: bulk writes, redelivery, an outage in the
 * middle of a stream, poison messages, profiles (latest wins), erasure, retention.
 * Events arrive as the Worker sends them, one `events` message per ingest run; single
 * `event` messages (the earlier form, maybe still on a queue) sync too.
 */

import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
} from 'cloudflare:test';
import type { EventMessage, EventsMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it } from 'vitest';
import { directusClient } from '../../src/directus/client.ts';
import worker from '../../src/index.ts';
import { collect, people, productView, recordQueue } from '../../src/ingest/test-support.ts';
import { DEAD_LETTER_QUEUE } from '../../src/sync/dead-letters.ts';
import { syncBatch } from '../../src/sync/index.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import {
  checkFailingAfterFirst,
  consentMessage,
  consume,
  deliveries,
  directusControl,
  env,
  eraseAtEdge,
  erasedRightAfterFirstCheck,
  erasureMessage,
  eventMessage,
  eventsMessage,
  idsOf,
  profileMessage,
  recordDeadLetters,
  rows,
  uniqueId,
} from './support.ts';

let dlq = recordDeadLetters();
afterEach(() => {
  dlq.restore();
  dlq = recordDeadLetters();
});

const eventIds = (msgs: EventMessage[]) => msgs.map((m) => m.event.id);

/** A sync client to the test Directus whose first request matching `fails` gets a 503 (Directus unavailable). */
function failingOnce(fails: (url: URL, init: RequestInit | undefined) => boolean) {
  let failed = false;
  const client = directusClient({
    url: DIRECTUS_TEST.url,
    token: DIRECTUS_TEST.syncToken,
    fetch: async (input, init) => {
      if (!failed && fails(new URL(String(input)), init)) {
        failed = true;
        return Response.json({ errors: [{ message: 'unavailable' }] }, { status: 503 });
      }
      return fetch(input, init);
    },
  });
  return { client, failed: () => failed };
}

async function storedEventIds(personId: string): Promise<string[]> {
  const found = await rows<{ id: string }>('events', { person_key: { _eq: personId } });
  return found.map((r) => r.id).sort();
}

describe('bulk write', () => {
  it('writes 100 events of events messages and single event messages with one write request, every field mapped', async () => {
    const person = `anon:${uniqueId('bulk')}`;
    const runs = Array.from({ length: 4 }, () => eventsMessage(person, 20));
    const singles = Array.from({ length: 20 }, () => eventMessage(person));
    const msgs = [...runs, ...singles];
    const requests: string[] = [];
    const directus = directusClient({
      url: DIRECTUS_TEST.url,
      token: DIRECTUS_TEST.syncToken,
      fetch: async (input, init) => {
        requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
    const batch = createMessageBatch(
      'attune-events',
      deliveries(msgs).map((d) => ({ ...d, timestamp: new Date(), attempts: 1 })),
    );
    const report = await syncBatch(batch, env(), { directus });

    expect(report).toMatchObject({ acked: 24, retried: 0, deadLettered: 0, eventsWritten: 100 });
    // One write request for the whole batch, through Attune's bulk endpoint extension.
    expect(requests.filter((r) => r.startsWith('POST'))).toEqual(['POST /attune-sync/events']);
    expect(await storedEventIds(person)).toEqual([...idsOf(...runs), ...eventIds(singles)].sort());

    const [first] = singles;
    const [row] = await rows('events', { id: { _eq: first?.event.id } });
    expect(row).toMatchObject({
      site_id: 'demo',
      person_key: person,
      type: 'track',
      name: 'product.viewed',
      anonymous_id: first?.event.anonymousId,
      properties: { productId: 'p-wok', category: 'kitchen' },
      purposes: ['analytics', 'personalization'],
      enrichment: { device: 'desktop' },
    });
    // The context subset: page and locale kept, screen dropped.
    expect(row?.context).toEqual({ page: { path: '/p/wok' }, locale: 'en-GB' });
    // An event of an events message: the same mapping, with its message's person and purposes.
    const [fromRun] = await rows('events', { id: { _eq: runs[0]?.events[0]?.event.id } });
    expect(fromRun).toMatchObject({
      person_key: person,
      name: 'product.viewed',
      properties: { productId: 'p-wok', category: 'kitchen' },
      purposes: ['analytics', 'personalization'],
      enrichment: { device: 'desktop' },
    });
  });

  it('keeps events without analytics consent out of the event log', async () => {
    const person = `anon:${uniqueId('noanalytics')}`;
    const msg = { ...eventMessage(person), purposes: ['personalization' as const] };
    const run: EventsMessage = { ...eventsMessage(person, 3), purposes: ['personalization', 'marketing'] };
    const result = await consume(deliveries([msg, run]));
    expect(result.explicitAcks).toHaveLength(2);
    expect(await storedEventIds(person)).toEqual([]);
  });
});

describe('redelivery', () => {
  it('writes nothing twice when a batch is delivered again, or a message twice in one batch', async () => {
    const person = `anon:${uniqueId('redeliver')}`;
    const msgs = Array.from({ length: 3 }, () => eventsMessage(person, 10));
    const consent = consentMessage(person);
    const first = deliveries([...msgs, consent]);
    const r1 = await consume(first);
    expect(r1.explicitAcks).toHaveLength(4);

    // The same messages again (a lost ack), plus duplicates inside one batch.
    const again = [...first, ...first.slice(0, 2)].map((d) => ({ ...d, attempts: 2 }));
    const r2 = await consume(again);
    expect(r2.retryMessages).toEqual([]);
    expect(new Set(r2.explicitAcks).size).toBe(4);

    expect(await storedEventIds(person)).toEqual(idsOf(...msgs).sort());
    expect(await rows('consent_records', { person_key: { _eq: person } })).toHaveLength(1);
  });
});

describe('Directus outage', () => {
  it('retries with a growing delay while Directus is down, then delivers everything exactly once', async () => {
    const person = `anon:${uniqueId('outage')}`;
    const before = deliveries(Array.from({ length: 4 }, () => eventsMessage(person, 5)));
    expect((await consume(before)).explicitAcks).toHaveLength(4);

    const during = deliveries(Array.from({ length: 5 }, () => eventsMessage(person, 5)));
    await directusControl('stop');
    try {
      const r1 = await consume(during, 1);
      expect(r1.explicitAcks).toEqual([]);
      expect(r1.retryMessages).toHaveLength(5);
      const r3 = await consume(during, 3);
      expect(r3.retryMessages).toHaveLength(5);
      const firstDelay = r1.delays.get(during[0]?.id ?? '') ?? 0;
      const thirdDelay = r3.delays.get(during[0]?.id ?? '') ?? 0;
      expect(firstDelay).toBeGreaterThan(0);
      expect(thirdDelay).toBeGreaterThan(firstDelay);
      expect(dlq.letters).toEqual([]);
    } finally {
      await directusControl('start');
    }

    // The queue redelivers the retried messages; the first batch is redelivered too (lost acks).
    const r4 = await consume([...during, ...before], 4);
    expect(r4.retryMessages).toEqual([]);
    expect(r4.explicitAcks).toHaveLength(9);
    expect(dlq.letters).toEqual([]);
    const all = idsOf(...[...before, ...during].map((d) => d.body as EventsMessage)).sort();
    expect(await storedEventIds(person)).toEqual(all);
  });
});

describe('poison messages', () => {
  it('sends a malformed or unstorable message to the DLQ with its reason and writes the rest of its batch', async () => {
    const person = `anon:${uniqueId('poison')}`;
    const good = Array.from({ length: 5 }, () => eventMessage(person));
    const malformed = { kind: 'event', siteId: 'demo', personId: person, event: { id: 'not-a-ulid' } };
    const badDate = eventMessage(person, { receivedAt: 'yesterday-ish' });
    const batch = deliveries([good[0], malformed, ...good.slice(1), badDate, { kind: 'nonsense' }]);
    const result = await consume(batch);

    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(8);
    expect(await storedEventIds(person)).toEqual(eventIds(good).sort());
    expect(dlq.letters).toHaveLength(3);
    const reasons = dlq.letters.map((l) => l.reason).join('\n');
    expect(reasons).toMatch(/invalid queue message at event/);
    expect(reasons).toMatch(/enrichment\.receivedAt is not a date-time/);
    expect(dlq.letters.map((l) => l.messageId).sort()).toEqual(
      [batch[1]?.id, batch[6]?.id, batch[7]?.id].map(String).sort(),
    );
    expect(dlq.letters.find((l) => l.messageId === batch[1]?.id)?.body).toEqual(malformed);
  });

  it('dead-letters only the bad events of an events message, each with its reason, and writes the others', async () => {
    const person = `anon:${uniqueId('poison-run')}`;
    const run = eventsMessage(person, 6);
    const badDate = eventsMessage(person, 1, { receivedAt: 'yesterday-ish' }).events[0];
    const malformed = { event: { id: 'not-a-ulid', type: 'track' }, enrichment: badDate?.enrichment };
    const good = [...run.events];
    const mixed = { ...run, events: [...good.slice(0, 3), badDate, malformed, ...good.slice(3)] };
    const other = eventsMessage(person, 2);
    const batch = deliveries([mixed, other]);
    const result = await consume(batch);

    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual(batch.map((d) => d.id).sort());
    expect(await storedEventIds(person)).toEqual([...idsOf(run), ...idsOf(other)].sort());
    expect(dlq.letters).toHaveLength(2);
    expect(dlq.letters.map((l) => l.messageId)).toEqual([batch[0]?.id, batch[0]?.id]);
    const reasons = dlq.letters.map((l) => l.reason).join('\n');
    expect(reasons).toMatch(/enrichment\.receivedAt is not a date-time/);
    expect(reasons).toMatch(/invalid queue message at events item: event/);
    // Each letter holds its one event as a single event message with the run's person and purposes.
    for (const letter of dlq.letters)
      expect(letter.body).toMatchObject({
        kind: 'event',
        siteId: 'demo',
        personId: person,
        purposes: run.purposes,
      });
    expect(dlq.letters.map((l) => (l.body as EventMessage).event.id).sort()).toEqual(
      [badDate?.event.id, 'not-a-ulid'].map(String).sort(),
    );
  });
});

describe('profiles', () => {
  it('upserts one row per person per batch and keeps the latest version, even when an older one arrives later', async () => {
    const person = `anon:${uniqueId('profile')}`;
    await consume(
      deliveries([
        profileMessage(person, 2, 'browsers'),
        profileMessage(person, 5, 'buyers'),
        profileMessage(person, 3, 'x'),
      ]),
    );
    let [row] = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(row).toMatchObject({ version: 5, segments: ['buyers'] });

    await consume(deliveries([profileMessage(person, 4, 'stale')]));
    [row] = await rows('people', { person_key: { _eq: person } });
    expect(row).toMatchObject({ version: 5, segments: ['buyers'] });

    await consume(deliveries([profileMessage(person, 6, 'loyal')]));
    const all = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ version: 6, segments: ['loyal'] });
  });
});

describe('profiles synced by two consumer invocations at once', () => {
  it('the older snapshot does not overwrite the newer one when its write lands last (a withdrawal stays withdrawn)', async () => {
    const person = `anon:${uniqueId('concurrent')}`;
    await consume(deliveries([profileMessage(person, 5, 'browsers')]));
    // Invocation A holds snapshot 6 (the interests before a withdrawal), B snapshot 7 (cleared).
    // A reaches its write first, and it is held there until B has synced: as two
    // invocations of one queue, run at once under a backlog, may interleave.
    let held: () => void = () => {};
    const aWaits = new Promise<void>((resolve) => {
      held = resolve;
    });
    let release: () => void = () => {};
    const bDone = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowWrites = directusClient({
      url: DIRECTUS_TEST.url,
      token: DIRECTUS_TEST.syncToken,
      fetch: async (input, init) => {
        if (init?.method === 'POST' || init?.method === 'PATCH') {
          held();
          await bDone;
        }
        return fetch(input, init);
      },
    });
    const batchOf = (version: number, segment: string) =>
      createMessageBatch(
        'attune-events',
        deliveries([profileMessage(person, version, segment)]).map((d) => ({
          ...d,
          timestamp: new Date(),
          attempts: 1,
        })),
      );
    const a = syncBatch(batchOf(6, 'before-withdrawal'), env(), { directus: slowWrites });
    await aWaits;
    const direct = directusClient({ url: DIRECTUS_TEST.url, token: DIRECTUS_TEST.syncToken });
    expect(await syncBatch(batchOf(7, 'cleared'), env(), { directus: direct })).toMatchObject({ acked: 1 });
    release();
    expect(await a).toMatchObject({ acked: 1, retried: 0 });
    const [row] = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(row).toMatchObject({ version: 7, segments: ['cleared'] });
  });
});

describe('browsers merged into a person', () => {
  it('their own rows go once the person’s snapshot lists them, so what they learned and their old grant do not outlive the person’s withdrawal', async () => {
    const browser = uniqueId('merged');
    const other = uniqueId('not-merged');
    await consume(
      deliveries([profileMessage(`anon:${browser}`, 3, 'browsers'), profileMessage(`anon:${other}`, 1, 'x')]),
    );
    expect(await rows('people', { person_key: { _eq: `anon:${browser}` } })).toHaveLength(1);

    const person = `user:${uniqueId('person')}`;
    const signedIn = profileMessage(person, 2, 'cleared');
    signedIn.profile.anonymousIds = [browser];
    // A late snapshot of the browser from before its sign-in, in the same batch, is not written either.
    await consume(deliveries([signedIn, profileMessage(`anon:${browser}`, 4, 'late')]));
    // Before, the browser's row kept its interests, segments and grant whatever the person chose.
    expect(await rows('people', { person_key: { _eq: `anon:${browser}` } })).toEqual([]);
    expect(await rows('people', { person_key: { _eq: person } })).toHaveLength(1);
    expect(await rows('people', { person_key: { _eq: `anon:${other}` } })).toHaveLength(1);
  });

  it('a late snapshot of a merged browser is not written either when a rejected row makes the batch write row by row', async () => {
    const browser = uniqueId('merged-rowwise');
    const poison = `anon:${uniqueId('rejected')}`;
    const person = `user:${uniqueId('person')}`;
    const signedIn = profileMessage(person, 2, 'cleared');
    signedIn.profile.anonymousIds = [browser];
    // Directus refuses any write naming the poison row, so the batch falls back to one write per row.
    const refusing = directusClient({
      url: DIRECTUS_TEST.url,
      token: DIRECTUS_TEST.syncToken,
      fetch: async (input, init) =>
        init?.method === 'POST' && String(init.body ?? '').includes(poison)
          ? Response.json({ errors: [{ message: 'refused' }] }, { status: 400 })
          : fetch(input, init),
    });
    // The person's snapshot first: written alone, the browser's after it brought its row back.
    const batch = createMessageBatch(
      'attune-events',
      deliveries([
        signedIn,
        profileMessage(`anon:${browser}`, 4, 'late'),
        profileMessage(poison, 1, 'x'),
      ]).map((m) => ({ id: m.id, timestamp: new Date(), attempts: 1, body: m.body })),
    );
    const report = await syncBatch(batch, env(), { directus: refusing });

    expect(report).toMatchObject({ deadLettered: 1, retried: 0 });
    expect(await rows('people', { person_key: { _eq: person } })).toHaveLength(1);
    expect(await rows('people', { person_key: { _eq: `anon:${browser}` } })).toEqual([]);
  });
});

describe('erasure', () => {
  it("deletes the person's profile, events and consent records, keeps others, and leaves a proof without the person", async () => {
    const erased = `anon:${uniqueId('erased')}`;
    const kept = `anon:${uniqueId('kept')}`;
    await consume(
      deliveries([
        eventsMessage(erased, 3),
        eventMessage(erased),
        eventsMessage(kept, 1),
        consentMessage(erased),
        consentMessage(kept),
        profileMessage(erased, 1, 'a'),
        profileMessage(kept, 1, 'b'),
      ]),
    );
    expect(await storedEventIds(erased)).toHaveLength(4);

    const erasure = deliveries([erasureMessage(erased)]);
    const result = await consume(erasure);
    expect(result.explicitAcks).toEqual([erasure[0]?.id]);
    // Redelivered erasure: still exactly one proof.
    await consume(erasure.map((d) => ({ ...d, attempts: 2 })));

    for (const collection of ['events', 'consent_records', 'people'])
      expect(await rows(collection, { person_key: { _eq: erased } })).toEqual([]);
    for (const collection of ['events', 'consent_records', 'people'])
      expect(await rows(collection, { person_key: { _eq: kept } })).toHaveLength(1);

    const proofs = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: erasure[0]?.id } });
    expect(proofs).toHaveLength(1);
    expect(proofs[0]).toMatchObject({
      site_id: 'demo',
      people_deleted: 1,
      events_deleted: 4,
      consent_records_deleted: 1,
    });
    expect(JSON.stringify(proofs[0])).not.toContain(erased.slice(5));
  });

  it('keeps the proof under the erasure id the DELETE answered, saying the person asked', async () => {
    const a = uniqueId('proof-id');
    await collect([productView(a, 'p1', 'shoes')]);
    const queue = recordQueue(env());
    let answer: Response;
    try {
      answer = await people(`anon:${a}`, 'DELETE');
    } finally {
      queue.restore();
    }
    expect(answer.status).toBe(200);
    const { erasureId } = (await answer.json()) as { erasureId: string };
    await consume(deliveries(queue.messages.filter((m) => m.kind === 'erasure')));
    // What a privacy officer looks up with the id they were given.
    const proofs = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: erasureId } });
    expect(proofs).toHaveLength(1);
    expect(proofs[0]).toMatchObject({ site_id: 'demo', reason: 'request' });
  });

  it('erases a person with 200 browsers of long ids, whose keys do not fit in a URL', async () => {
    const userId = uniqueId('many-browsers');
    const browsers = Array.from({ length: 200 }, (_, i) => `${i}-${uniqueId('b')}-`.padEnd(120, 'x'));
    const person = `user:${userId}`;
    const snapshot = profileMessage(person, 1, 'a');
    snapshot.profile.anonymousIds = browsers;
    const kept = `anon:${uniqueId('kept')}`;
    await consume(
      deliveries([
        snapshot,
        eventsMessage(`anon:${browsers[199]}`, 1),
        profileMessage(kept, 1, 'b'),
        eventsMessage(kept, 1),
      ]),
    );
    expect(await rows('events', { person_key: { _eq: `anon:${browsers[199]}` } })).toHaveLength(1);

    const erasure = erasureMessage(person);
    erasure.anonymousIds = browsers;
    const delivered = deliveries([erasure]);
    // Before, the keys went in a GET's query string (about 30 KB): Directus refused it (431),
    // and the erasure was set aside as a dead letter instead of done.
    const result = await consume(delivered);
    expect(result.explicitAcks).toEqual([delivered[0]?.id]);
    expect(dlq.letters).toEqual([]);
    expect(await rows('people', { person_key: { _eq: person } })).toEqual([]);
    expect(await rows('events', { person_key: { _eq: `anon:${browsers[199]}` } })).toEqual([]);
    // The long query was read as a filter, not ignored: nobody else's rows went.
    expect(await rows('people', { person_key: { _eq: kept } })).toHaveLength(1);
    expect(await rows('events', { person_key: { _eq: kept } })).toHaveLength(1);
  });

  it('a retried erasure still deletes what only Directus recorded of the person, after failing part-way', async () => {
    const user = uniqueId('erase-retry');
    const person = `user:${user}`;
    // A browser merged into the person that only their Directus row still records.
    const browser = uniqueId('recorded-only');
    const merged = profileMessage(person, 1, 'a');
    merged.profile = { ...merged.profile, anonymousIds: [browser], userId: user };
    await consume(
      deliveries([
        merged,
        eventMessage(person),
        eventMessage(`anon:${browser}`),
        consentMessage(`anon:${browser}`),
      ]),
    );
    expect(await storedEventIds(`anon:${browser}`)).toHaveLength(1);

    // The edge lost the browser: the erasure names the user only.
    const erasure = deliveries([{ ...erasureMessage(person), anonymousIds: [], userId: user }]);
    // Directus fails the first request on events (a 503): the erasure is retried.
    const flaky = failingOnce((url) => url.pathname === '/items/events');
    const first = createMessageBatch(
      'attune-events',
      erasure.map((d) => ({ ...d, timestamp: new Date(), attempts: 1 })),
    );
    expect(await syncBatch(first, env(), { directus: flaky.client })).toMatchObject({
      retried: 1,
      erasures: 0,
    });
    expect(flaky.failed()).toBe(true);

    const again = await consume(erasure, 2);
    expect(again.explicitAcks).toEqual([erasure[0]?.id]);
    for (const key of [person, `anon:${browser}`])
      for (const collection of ['events', 'consent_records', 'people'])
        expect(await rows(collection, { person_key: { _eq: key } })).toEqual([]);
    expect(await rows('erasure_proofs', { id: { _eq: erasure[0]?.id } })).toHaveLength(1);
  });

  it('drops a late event for a person erased in the same batch', async () => {
    const person = `anon:${uniqueId('same-batch')}`;
    const result = await consume(
      deliveries([eventsMessage(person, 3), eventMessage(person), erasureMessage(person)]),
    );
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(3);
    expect(await storedEventIds(person)).toEqual([]);
  });
});

/**
 * A person with three events, a consent record, a dead letter and a profile, and the first
 * delivery of their erasure, which fails on its last step (Directus answers 503 to the
 * delete of `people`): their events, consent record and letter are gone by then. Answers
 * the erasure's deliveries (to deliver again) and the key of its proof.
 */
async function erasureFailingAtPeople(prefix: string) {
  const person = `anon:${uniqueId(prefix)}`;
  await consume(
    deliveries([eventsMessage(person, 3), consentMessage(person), profileMessage(person, 1, 'a')]),
  );
  await consume(deliveries([eventsMessage(person, 1)]), 1, DEAD_LETTER_QUEUE);
  expect(await rows('dead_letters', { person_key: { _eq: person } })).toHaveLength(1);

  const erasure = deliveries([erasureMessage(person)]);
  const failingAtPeople = failingOnce(
    (url, init) => init?.method === 'DELETE' && url.pathname === '/items/people',
  );
  const first = createMessageBatch(
    'attune-events',
    erasure.map((d) => ({ ...d, timestamp: new Date(), attempts: 1 })),
  );
  expect(await syncBatch(first, env(), { directus: failingAtPeople.client })).toMatchObject({
    retried: 1,
    erasures: 0,
  });
  expect(failingAtPeople.failed()).toBe(true);
  expect(await storedEventIds(person)).toEqual([]);
  expect(await rows('people', { person_key: { _eq: person } })).toHaveLength(1);
  const proofId = erasure[0]?.id ?? '';
  const proof = async () => rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: proofId } });
  return { person, erasure, proof };
}

describe('the proof of an erasure retried after failing part-way', () => {
  it('counts what every attempt deleted, and a redelivery once it is done changes nothing', async () => {
    const { person, erasure, proof } = await erasureFailingAtPeople('proof-retry');

    // The retry finds the events, consent record and letter gone: it deletes the profile alone.
    const again = await consume(erasure, 2);
    expect(again.explicitAcks).toEqual([erasure[0]?.id]);
    expect(await rows('people', { person_key: { _eq: person } })).toEqual([]);
    const done = await proof();
    expect(done).toHaveLength(1);
    // Before, the proof counted the last attempt alone: events_deleted 0, consent_records_deleted 0.
    expect(done[0]).toMatchObject({
      people_deleted: 1,
      events_deleted: 3,
      consent_records_deleted: 1,
      dead_letters_deleted: 1,
      orders_anonymized: 0,
    });
    expect(typeof done[0]?.erased_at).toBe('string');

    // Delivered once more after it was done (an ack lost): nothing is counted twice, and
    // the time of the erasure does not move.
    const late = await consume(erasure, 3);
    expect(late.explicitAcks).toEqual([erasure[0]?.id]);
    expect(await proof()).toEqual(done);
  });

  it('shows the erasure under way to a privacy officer meanwhile: no erased_at, the counts so far', async () => {
    const { erasure, proof } = await erasureFailingAtPeople('proof-under-way');
    const underWay = await proof();
    expect(underWay).toHaveLength(1);
    expect(underWay[0]).toMatchObject({
      site_id: 'demo',
      erased_at: null,
      people_deleted: 0,
      events_deleted: 3,
      consent_records_deleted: 1,
      dead_letters_deleted: 1,
    });
    await consume(erasure, 2);
    expect((await proof())[0]).toMatchObject({ people_deleted: 1, events_deleted: 3 });
  });

  it('adds up what deliveries counting at once add, and leaves a closed proof as it is', async () => {
    const directus = directusClient({ url: DIRECTUS_TEST.url, token: DIRECTUS_TEST.syncToken });
    const proof = {
      id: uniqueId('proof-at-once'),
      site_id: 'demo',
      reason: 'request',
      requested_at: new Date().toISOString(),
    };
    // Read by the caller, added to and written back, some of these would be lost. (On SQLite
    // Directus runs one transaction at a time, so this rules out counting outside the
    // database, not a read-then-write inside one transaction.)
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => directus.changeErasureProof({ proof, add: { events_deleted: 1 } })),
    );
    expect(answers).toEqual(answers.map(() => false));
    expect(
      // A time from the caller is not taken: the proof is closed at Directus's own.
      await directus.changeErasureProof({
        proof,
        add: { people_deleted: 1 },
        erasedAt: '2000-01-01T00:00:00.000Z',
      }),
    ).toBe(false);
    const [closed] = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: proof.id } });
    expect(closed).toMatchObject({ events_deleted: 20, people_deleted: 1, reason: 'request' });
    expect(Date.parse(String(closed?.erased_at))).toBeGreaterThanOrEqual(
      Date.parse(proof.requested_at) - 1000,
    );

    expect(
      await directus.changeErasureProof({
        proof: { ...proof, site_id: 'elsewhere' },
        add: { events_deleted: 5 },
        erasedAt: new Date().toISOString(),
      }),
    ).toBe(true);
    expect(await rows('erasure_proofs', { id: { _eq: proof.id } })).toEqual([closed]);
  });
});

/** A person's old rows, then the messages of their return after a retention erasure requested at `requestedAt`. */
function cameBack(person: string) {
  const requested = Date.now() - 60_000;
  const requestedAt = new Date(requested).toISOString();
  const before = new Date(requested - 3_600_000).toISOString();
  const oldProfile = profileMessage(person, 5, 'old');
  oldProfile.profile = { ...oldProfile.profile, firstSeen: before, lastSeen: before };
  const old = {
    event: eventMessage(person, { receivedAt: before }),
    // Received at the very moment the erasure was requested: still the erased person's.
    atRequest: eventMessage(person, { receivedAt: requestedAt }),
    consent: { ...consentMessage(person), recordedAt: before },
    profile: oldProfile,
  };
  // The retention alarm wiped the ProfileDO: it numbers the person's versions from 1 again,
  // in a life that began after the erasure was requested.
  const returned = (version: number) => {
    const message = profileMessage(person, version, 'returned');
    const now = new Date().toISOString();
    message.profile = { ...message.profile, firstSeen: now, lastSeen: now };
    return message;
  };
  const back = {
    event: eventMessage(person),
    consent: consentMessage(person),
    profile: returned(1),
  };
  const erasure = { ...erasureMessage(person), requestedAt };
  return { old, back, erasure, returned };
}

describe('erasure bounded by its request (retention erasure delivered late)', () => {
  it('keeps what a person sent after the erasure was requested, in the same batch as it; deletes and drops what came before', async () => {
    const person = `anon:${uniqueId('came-back')}`;
    const { old, back, erasure } = cameBack(person);
    await consume(deliveries([old.event, old.atRequest, old.consent, old.profile]));
    expect(await storedEventIds(person)).toHaveLength(2);

    // Queued before the erasure and delivered late, in the batch with it and the return.
    const late = eventMessage(person, { receivedAt: old.consent.recordedAt });
    const batch = deliveries([late, back.event, back.consent, back.profile, erasure]);
    const result = await consume(batch);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual(batch.map((d) => d.id).sort());

    expect(await storedEventIds(person)).toEqual([back.event.event.id]);
    const consents = await rows<{ id: string }>('consent_records', { person_key: { _eq: person } });
    expect(consents.map((c) => c.id)).toEqual([back.consent.eventId]);
    const people = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(people).toHaveLength(1);
    expect(people[0]).toMatchObject({ version: 1, segments: ['returned'] });
    const [proof] = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: batch[4]?.id } });
    expect(proof).toMatchObject({ people_deleted: 1, events_deleted: 2, consent_records_deleted: 1 });
  });

  it('keeps what a person sent after the erasure was requested and synced before it', async () => {
    const person = `anon:${uniqueId('came-back-first')}`;
    const { old, back, erasure, returned } = cameBack(person);
    await consume(deliveries([old.event, old.atRequest, old.consent, old.profile]));
    // The return syncs first (the erasure waits for a retry); its snapshot replaces the old row.
    const newer = returned(6);
    await consume(deliveries([back.event, back.consent, newer]));
    expect(await storedEventIds(person)).toHaveLength(3);

    const result = await consume(deliveries([erasure]), 3);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await storedEventIds(person)).toEqual([back.event.event.id]);
    const consents = await rows<{ id: string }>('consent_records', { person_key: { _eq: person } });
    expect(consents.map((c) => c.id)).toEqual([back.consent.eventId]);
    const people = await rows<{ version: number }>('people', { person_key: { _eq: person } });
    expect(people).toEqual([expect.objectContaining({ version: 6 })]);
  });
});

describe('a person back after a retention erasure, numbered from 1 again', () => {
  it('their first snapshot replaces the old row of a higher version, and outlives the erasure delivered after it', async () => {
    const person = `anon:${uniqueId('came-back-from-1')}`;
    const { old, back, erasure } = cameBack(person);
    await consume(deliveries([old.event, old.atRequest, old.consent, old.profile]));
    // The return syncs first, as the ProfileDO numbers it: version 1 against the old row's 5.
    await consume(deliveries([back.event, back.consent, back.profile]));
    const afterReturn = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(afterReturn).toEqual([expect.objectContaining({ version: 1, segments: ['returned'] })]);

    await consume(deliveries([erasure]), 3);
    const people = await rows<{ version: number; segments: string[] }>('people', {
      person_key: { _eq: person },
    });
    expect(people).toEqual([expect.objectContaining({ version: 1, segments: ['returned'] })]);
    // A late copy of the old life's snapshot does not overwrite the return.
    await consume(deliveries([old.profile]));
    const still = await rows<{ segments: string[] }>('people', { person_key: { _eq: person } });
    expect(still).toEqual([expect.objectContaining({ segments: ['returned'] })]);
  });
});

describe('retention', () => {
  it('the daily cron deletes events received before the retention period and keeps newer ones', async () => {
    const person = `anon:${uniqueId('retention')}`;
    const day = 24 * 60 * 60 * 1000;
    const old = eventMessage(person, { receivedAt: new Date(Date.now() - 120 * day).toISOString() });
    const recent = eventMessage(person, { receivedAt: new Date(Date.now() - 10 * day).toISOString() });
    await consume(deliveries([old, recent]));
    expect(await storedEventIds(person)).toHaveLength(2);

    const controller = createScheduledController({ scheduledTime: Date.now(), cron: '17 3 * * *' });
    await worker.scheduled(controller, env());
    expect(await storedEventIds(person)).toEqual([recent.event.id]);
  });
});

describe('erasure racing a batch', () => {
  it('an event whose person is erased while it is being written does not outlive the erasure', async () => {
    const a = uniqueId('sync-race');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const race = erasedRightAfterFirstCheck(person);
    const batch = createMessageBatch('attune-events', [
      { id: `race-${uniqueId('m')}`, timestamp: new Date(), attempts: 1, body: eventsMessage(person, 2) },
    ]);
    const ctx = createExecutionContext();
    await syncBatch(batch, env(), { isErased: race.check });
    expect(race.erased()).toBe(true);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    expect(await storedEventIds(person)).toEqual([]);
  });

  it('retries an event whose person cannot be asked again after the write; the redelivery deletes it once they are erased', async () => {
    const a = uniqueId('sync-unsure');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const message = { id: `unsure-${uniqueId('m')}`, timestamp: new Date(), body: eventsMessage(person, 1) };
    const batch = createMessageBatch('attune-events', [{ ...message, attempts: 1 }]);
    const ctx = createExecutionContext();
    await syncBatch(batch, env(), { isErased: checkFailingAfterFirst() });
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(await storedEventIds(person)).toHaveLength(1);

    // Erased at the edge before the redelivery; the erasure's own sync ran before the row
    // landed (here: has not run), so only the redelivery can delete it.
    await eraseAtEdge(env(), person);
    const redelivered = createMessageBatch('attune-events', [{ ...message, attempts: 2 }]);
    const again = createExecutionContext();
    await syncBatch(redelivered, env());
    expect((await getQueueResult(redelivered, again)).explicitAcks).toHaveLength(1);
    expect(await storedEventIds(person)).toEqual([]);
  });
});
