/**
 * The dead-letter queue's consumer against a real Directus: what the sync set aside lands
 * in `dead_letters` with its reason and body, once; a message the queue gave up on is
 * kept too; Directus down means retry; an erasure deletes the person's letters and drops
 * later ones; an operator resends letters once the cause is fixed.
 */

import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
} from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type DirectusClient,
  DirectusError,
  directusClient,
  directusFromEnv,
} from '../../src/directus/client.ts';
import worker from '../../src/index.ts';
import { QUEUE_SEND_BUDGET_MS } from '../../src/ingest/queue-producer.ts';
import {
  ADMIN_HEADERS,
  call,
  collect,
  people,
  productView,
  recordQueue,
  stuckQueueCall,
} from '../../src/ingest/test-support.ts';
import { DEAD_LETTER_QUEUE, LAST_DELIVERY, storeDeadLetters } from '../../src/sync/dead-letters.ts';
import { RETRIES_EXHAUSTED } from '../../src/sync/mapping.ts';
import {
  admin,
  checkFailingAfterFirst,
  consume,
  deliveries,
  env,
  eraseAtEdge,
  erasedRightAfterFirstCheck,
  erasureMessage,
  eventMessage,
  eventsMessage,
  recordDeadLetters,
  rows,
  SITE,
  uniqueId,
} from './support.ts';

let dlq = recordDeadLetters();
afterEach(() => {
  dlq.restore();
  dlq = recordDeadLetters();
});

type LetterRow = {
  id: string;
  site_id: string | null;
  person_key: string | null;
  reason: string;
  attempts: number | null;
  message: unknown;
};
const lettersOf = (person: string) => rows<LetterRow>('dead_letters', { person_key: { _eq: person } });

describe('the dead-letter queue', () => {
  it('keeps what the sync set aside in Directus: reason, person and the original message, once', async () => {
    const person = `anon:${uniqueId('dlq')}`;
    const poison = eventMessage(person, { receivedAt: 'yesterday-ish' });
    await consume(deliveries([poison]));
    expect(dlq.letters).toHaveLength(1);

    const letters = deliveries(dlq.letters);
    const result = await consume(letters, 1, DEAD_LETTER_QUEUE);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toEqual(letters.map((l) => l.id));
    // A redelivery of the same DLQ message writes nothing twice.
    await consume(letters, 2, DEAD_LETTER_QUEUE);

    const kept = (await lettersOf(person)).filter((row) => row.id === letters[0]?.id);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({ site_id: 'demo', person_key: person, attempts: 1, message: poison });
    expect(kept[0]?.reason).toMatch(/enrichment\.receivedAt is not a date-time/);
  });

  it('keeps a message the queue gave up on after its last retry, saying so', async () => {
    const person = `anon:${uniqueId('dlq-exhausted')}`;
    const run = eventsMessage(person, 3);
    const result = await consume(deliveries([run]), 1, DEAD_LETTER_QUEUE);
    expect(result.retryMessages).toEqual([]);
    const [kept] = await lettersOf(person);
    expect(kept).toMatchObject({ reason: RETRIES_EXHAUSTED, attempts: null, message: run });
  });

  it('on its last delivery, a letter or an erasure Directus cannot take yet goes back on the queue instead of being dropped', async () => {
    const person = `anon:${uniqueId('dlq-last')}`;
    const letter = eventsMessage(person, 1);
    const erasure = erasureMessage(person);
    const batch = createMessageBatch<unknown>(
      DEAD_LETTER_QUEUE,
      [letter, erasure].map((body) => ({
        id: `last-${uniqueId('m')}`,
        timestamp: new Date(),
        attempts: LAST_DELIVERY,
        body,
      })),
    );
    const ctx = createExecutionContext();
    const unreachable = directusClient({ url: 'http://127.0.0.1:9', token: 'x' });
    const report = await storeDeadLetters(batch, env(), { directus: unreachable });
    expect(report).toMatchObject({ stored: 0, retried: 0, requeued: 2 });
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(2);
    expect(dlq.letters).toHaveLength(2);
    expect(dlq.letters).toEqual(expect.arrayContaining([letter, erasure]));
  });

  it('on its last delivery, a letter written but not confirmed is deleted once its copy is back on the queue (no second row)', async () => {
    const a = uniqueId('dlq-last-written');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const letter = eventsMessage(person, 1);
    const batch = createMessageBatch<unknown>(DEAD_LETTER_QUEUE, [
      { id: `last-${uniqueId('m')}`, timestamp: new Date(), attempts: LAST_DELIVERY, body: letter },
    ]);
    const ctx = createExecutionContext();
    const report = await storeDeadLetters(batch, env(), { isErased: checkFailingAfterFirst() });
    expect(report).toMatchObject({ stored: 0, retried: 0, requeued: 1 });
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    expect(dlq.letters).toEqual([letter]);
    // The copy on the queue writes the one row when it is stored.
    expect(await lettersOf(person)).toEqual([]);
  });

  /** A letter about a person who was seen, on the retry after its last delivery: the queue drops it if it is retried once more. */
  async function onLastRetry(label: string) {
    const a = uniqueId(label);
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const letter = eventsMessage(person, 1);
    const id = `last-${uniqueId('m')}`;
    const batch = createMessageBatch<unknown>(DEAD_LETTER_QUEUE, [
      { id, timestamp: new Date(), attempts: LAST_DELIVERY + 1, body: letter },
    ]);
    return { person, letter, id, batch, ctx: createExecutionContext() };
  }

  it('on its last retry, a letter written but not confirmed whose copy the queue refuses stays listed, and can be resent', async () => {
    const { person, letter, id, batch, ctx } = await onLastRetry('dlq-last-refused');
    const refusing = vi.spyOn(env().EVENTS_DLQ, 'send').mockRejectedValue(new Error('Queue send failed'));
    let report: Awaited<ReturnType<typeof storeDeadLetters>>;
    try {
      report = await storeDeadLetters(batch, env(), { isErased: checkFailingAfterFirst() });
    } finally {
      refusing.mockRestore();
    }
    expect(report).toMatchObject({ requeued: 0, retried: 1 });
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual([]);
    // Not lost with the message: the letter is still there for an operator.
    expect((await lettersOf(person)).map((l) => ({ id: l.id, message: l.message }))).toEqual([
      { id, message: letter },
    ]);
    const queue = recordQueue(env());
    try {
      const res = await call(JSON.stringify({ ids: [id] }), {
        path: '/v1/admin/dead-letters/resend',
        origin: null,
        headers: { ...ADMIN_HEADERS, 'content-type': 'application/json' },
      });
      expect(await res.json()).toMatchObject({ resent: 1, notFound: [] });
    } finally {
      queue.restore();
    }
    expect(queue.messages).toEqual([letter]);
  });

  it('on its last retry, a copy the queue never answers for is given up on within the send budget, and the letter stays listed', {
    timeout: QUEUE_SEND_BUDGET_MS * 3,
  }, async () => {
    const { person, id, batch, ctx } = await onLastRetry('dlq-last-stuck');
    const stuck = vi.spyOn(env().EVENTS_DLQ, 'send').mockImplementation(() => stuckQueueCall());
    let report: Awaited<ReturnType<typeof storeDeadLetters>>;
    try {
      report = await storeDeadLetters(batch, env(), { isErased: checkFailingAfterFirst() });
    } finally {
      stuck.mockRestore();
    }
    expect(report).toMatchObject({ requeued: 0, retried: 1 });
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual([]);
    expect((await lettersOf(person)).map((l) => l.id)).toEqual([id]);
  });

  it('retries while Directus cannot be reached, and acks nothing', async () => {
    const person = `anon:${uniqueId('dlq-down')}`;
    const batch = createMessageBatch(DEAD_LETTER_QUEUE, [
      { id: `down-${uniqueId('m')}`, timestamp: new Date(), attempts: 1, body: eventsMessage(person, 1) },
    ]);
    const ctx = createExecutionContext();
    const unreachable = directusClient({ url: 'http://127.0.0.1:9', token: 'x' });
    const report = await storeDeadLetters(batch, env(), { directus: unreachable });
    expect(report).toMatchObject({ stored: 0, retried: 1 });
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(batch.messages.map((m) => m.id));
    expect(result.explicitAcks).toEqual([]);
    expect(await lettersOf(person)).toEqual([]);
  });

  it("an erasure deletes the person's letters, and later letters about them are not kept", async () => {
    const a = uniqueId('dlq-erased');
    const person = `anon:${a}`;
    await consume(deliveries([eventsMessage(person, 2)]), 1, DEAD_LETTER_QUEUE);
    expect(await lettersOf(person)).toHaveLength(1);

    await consume(deliveries([erasureMessage(person)]));
    expect(await lettersOf(person)).toEqual([]);
    const proofs = await rows<{ dead_letters_deleted: number }>('erasure_proofs', {
      dead_letters_deleted: { _eq: 1 },
    });
    expect(proofs.length).toBeGreaterThan(0);

    // Erased at the edge (the tombstone the consumer checks): a letter arriving later is dropped.
    await collect([productView(a, 'p1', 'shoes')]);
    expect((await people(person, 'DELETE')).status).toBe(200);
    const late = await consume(deliveries([eventsMessage(person, 1)]), 1, DEAD_LETTER_QUEUE);
    expect(late.retryMessages).toEqual([]);
    expect(late.explicitAcks).toHaveLength(1);
    expect(await lettersOf(person)).toEqual([]);
  });

  it('a letter whose person is erased while it is being stored does not outlive the erasure', async () => {
    const a = uniqueId('dlq-race');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const race = erasedRightAfterFirstCheck(person);
    const batch = createMessageBatch(DEAD_LETTER_QUEUE, [
      { id: `race-${uniqueId('m')}`, timestamp: new Date(), attempts: 1, body: eventsMessage(person, 1) },
    ]);
    const report = await storeDeadLetters(batch, env(), { isErased: race.check });
    expect(race.erased()).toBe(true);
    expect(report).toMatchObject({ stored: 0, dropped: 1 });
    expect(await lettersOf(person)).toEqual([]);
  });

  it('retries a letter whose person cannot be checked again after the write, and its redelivery deletes it once they are erased', async () => {
    const a = uniqueId('dlq-unsure');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const letter = { id: `unsure-${uniqueId('m')}`, timestamp: new Date(), body: eventsMessage(person, 1) };
    const batch = createMessageBatch(DEAD_LETTER_QUEUE, [{ ...letter, attempts: 1 }]);
    const ctx = createExecutionContext();
    expect(await storeDeadLetters(batch, env(), { isErased: checkFailingAfterFirst() })).toMatchObject({
      stored: 0,
      retried: 1,
    });
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(await lettersOf(person)).toHaveLength(1);

    // Erased meanwhile (its erasure found the letter not yet acked, or ran before it was written).
    await eraseAtEdge(env(), person);
    const redelivered = createMessageBatch(DEAD_LETTER_QUEUE, [{ ...letter, attempts: 2 }]);
    expect(await storeDeadLetters(redelivered, env())).toMatchObject({ dropped: 1, retried: 0 });
    expect(await lettersOf(person)).toEqual([]);
  });

  it('keeps an erasure Directus refuses outright, for an operator to act on', async () => {
    const a = uniqueId('dlq-refused-erasure');
    const person = `anon:${a}`;
    await collect([productView(a, 'p1', 'shoes')]);
    const queue = recordQueue(env());
    try {
      expect((await people(person, 'DELETE')).status).toBe(200);
    } finally {
      queue.restore();
    }
    const erasure = queue.messages.filter((m) => m.kind === 'erasure');
    expect(erasure).toHaveLength(1);
    // Directus refuses to delete the person's rows (say, a field's validation changed).
    const real = directusFromEnv(env());
    const refusing: DirectusClient = {
      ...real,
      deleteWhere: async () => {
        throw new DirectusError('refused', 400, 'INVALID_PAYLOAD', false);
      },
    };
    const batch = createMessageBatch(
      DEAD_LETTER_QUEUE,
      deliveries(erasure).map((d) => ({ ...d, timestamp: new Date(), attempts: 1 })),
    );
    expect(await storeDeadLetters(batch, env(), { directus: refusing })).toMatchObject({
      stored: 1,
      retried: 0,
    });
    const [kept] = await lettersOf(person);
    expect((kept?.message as { kind?: string } | undefined)?.kind).toBe('erasure');
  });

  it('an erasure the queue gave up on is applied, not kept or dropped', async () => {
    const a = uniqueId('dlq-erasure');
    const person = `anon:${a}`;
    await consume(deliveries([eventsMessage(person, 2)]));
    expect(await rows('events', { person_key: { _eq: person } })).toHaveLength(2);
    // Erased at the edge (tombstone) while Directus was down: its erasure message went to the DLQ.
    const queue = recordQueue();
    try {
      await collect([productView(a, 'p1', 'shoes')]);
      expect((await people(person, 'DELETE')).status).toBe(200);
    } finally {
      queue.restore();
    }
    const erasure = queue.messages.filter((m) => m.kind === 'erasure');
    expect(erasure).toHaveLength(1);

    const result = await consume(deliveries(erasure), 1, DEAD_LETTER_QUEUE);
    expect(result.retryMessages).toEqual([]);
    expect(await rows('events', { person_key: { _eq: person } })).toEqual([]);
    expect(await lettersOf(person)).toEqual([]);
  });

  it('the daily cron deletes letters set aside before the retention period and keeps newer ones', async () => {
    const person = `anon:${uniqueId('dlq-retention')}`;
    const day = 24 * 60 * 60 * 1000;
    const letter = (daysAgo: number) => ({
      reason: 'bad date',
      messageId: uniqueId('m'),
      attempts: 1,
      failedAt: new Date(Date.now() - daysAgo * day).toISOString(),
      body: eventMessage(person),
    });
    const [old, recent] = deliveries([letter(120), letter(10)]);
    await consume(
      [old, recent].filter((d) => d !== undefined),
      1,
      DEAD_LETTER_QUEUE,
    );
    expect(await lettersOf(person)).toHaveLength(2);
    // An erasure Directus refused 120 days ago, still waiting for an operator.
    const refused = `anon:${uniqueId('dlq-retention-erasure')}`;
    const refusing: DirectusClient = {
      ...directusFromEnv(env()),
      deleteWhere: async () => {
        throw new DirectusError('refused', 400, 'INVALID_PAYLOAD', false);
      },
    };
    const erasureLetter = { ...letter(120), reason: 'erasure rejected', body: erasureMessage(refused) };
    await storeDeadLetters(
      createMessageBatch(
        DEAD_LETTER_QUEUE,
        deliveries([erasureLetter]).map((d) => ({ ...d, timestamp: new Date(), attempts: 1 })),
      ),
      env(),
      { directus: refusing },
    );
    const [pending] = await lettersOf(refused);
    expect(pending?.reason).toMatch(/^erasure not done/);
    // One kept before that reason was given, when a refused erasure kept the reason it came with.
    const earlier = `anon:${uniqueId('dlq-retention-earlier-erasure')}`;
    const olderId = uniqueId('letter');
    await directusFromEnv(env()).createItems('dead_letters', [
      {
        id: olderId,
        site_id: 'demo',
        person_key: earlier,
        reason: RETRIES_EXHAUSTED,
        attempts: 1,
        failed_at: new Date(Date.now() - 120 * day).toISOString(),
        message: erasureMessage(earlier),
      },
    ]);

    await worker.scheduled(
      createScheduledController({ scheduledTime: Date.now(), cron: '17 3 * * *' }),
      env(),
    );
    expect((await lettersOf(person)).map((row) => row.id)).toEqual([recent?.id]);
    // Before, it went with the rest: the only record that the person's rows wait to be erased.
    expect((await lettersOf(refused)).map((row) => row.id)).toEqual([pending?.id]);
    expect((await lettersOf(earlier)).map((row) => row.id)).toEqual([olderId]);
  });

  describe('resending (POST /v1/admin/dead-letters/resend)', () => {
    const resend = (body: unknown, headers: Record<string, string> = ADMIN_HEADERS) =>
      call(typeof body === 'string' ? body : JSON.stringify(body), {
        path: '/v1/admin/dead-letters/resend',
        origin: null,
        headers: { ...headers, 'content-type': 'application/json' },
      });

    it("sends a letter's message back to the sync, which writes its events, and deletes the letter", async () => {
      const person = `anon:${uniqueId('dlq-resend')}`;
      const run = eventsMessage(person, 3);
      const letters = deliveries([run]);
      await consume(letters, 1, DEAD_LETTER_QUEUE);
      expect(await lettersOf(person)).toHaveLength(1);
      expect(await rows('events', { person_key: { _eq: person } })).toEqual([]);

      const queue = recordQueue(env());
      let res: Response;
      try {
        res = await resend({ ids: letters.map((l) => l.id) });
      } finally {
        queue.restore();
      }
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ resent: 1, unsendable: [], notFound: [], more: false });
      expect(queue.messages).toEqual([run]);
      expect(await lettersOf(person)).toEqual([]);

      // The resent message goes through the real sync: its three events land in the log.
      const result = await consume(deliveries(queue.messages));
      expect(result.retryMessages).toEqual([]);
      expect(await rows('events', { person_key: { _eq: person } })).toHaveLength(3);
    });

    it('keeps a letter whose resend the queue refused, says so (502, JSON, "call again"), and resends it later', async () => {
      const person = `anon:${uniqueId('dlq-resend-refused')}`;
      const run = eventsMessage(person, 2);
      const letters = deliveries([run]);
      await consume(letters, 1, DEAD_LETTER_QUEUE);
      const ids = letters.map((l) => l.id);
      expect((await lettersOf(person)).map((l) => l.id)).toEqual(ids);

      // The EVENTS queue refuses the send (an outage, a limit).
      const refusing = vi.spyOn(env().EVENTS, 'sendBatch').mockRejectedValue(new Error('Queue send failed'));
      let res: Response;
      try {
        res = await resend({ ids });
      } finally {
        refusing.mockRestore();
      }
      expect(res.status).toBe(502);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const answer = (await res.json()) as { error: { code: string; message: string }; resent: number };
      expect(answer).toMatchObject({ resent: 0, error: { code: 'queue_unavailable' } });
      expect(answer.error.message).toMatch(
        /^0 letters were resent .*failed \(Queue send failed\); call again$/,
      );
      // The letter is still listed, as it was.
      expect((await lettersOf(person)).map((l) => l.id)).toEqual(ids);

      // Once the queue takes messages again, the same call resends it.
      const queue = recordQueue(env());
      try {
        res = await resend({ ids });
      } finally {
        queue.restore();
      }
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ resent: 1 });
      expect(queue.messages).toEqual([run]);
      expect(await lettersOf(person)).toEqual([]);
    });

    it('answers within the send budget when the queue never answers, keeping the letter, and says it may have gone', {
      timeout: QUEUE_SEND_BUDGET_MS * 3,
    }, async () => {
      const person = `anon:${uniqueId('dlq-resend-stuck')}`;
      const run = eventsMessage(person, 2);
      const letters = deliveries([run]);
      await consume(letters, 1, DEAD_LETTER_QUEUE);
      const ids = letters.map((l) => l.id);

      // The EVENTS queue takes the call and never answers (its service stuck).
      const stuck = vi.spyOn(env().EVENTS, 'sendBatch').mockImplementation(() => stuckQueueCall());
      let res: Response;
      try {
        res = await resend({ ids });
      } finally {
        stuck.mockRestore();
      }
      expect(res.status).toBe(502);
      const answer = (await res.json()) as { error: { code: string; message: string }; resent: number };
      expect(answer).toMatchObject({ resent: 0, error: { code: 'queue_unavailable' } });
      expect(answer.error.message).toMatch(
        /did not answer .* may have reached the queue .*except for covisit letters/,
      );
      // Kept, so nothing is lost if the send never landed.
      expect((await lettersOf(person)).map((l) => l.id)).toEqual(ids);
    });

    it('keeps a letter whose message nothing can sync, and names ids it does not hold', async () => {
      const person = `anon:${uniqueId('dlq-unsendable')}`;
      const letters = deliveries([{ kind: 'no-such-kind', siteId: SITE, personId: person }]);
      await consume(letters, 1, DEAD_LETTER_QUEUE);
      const id = letters[0]?.id ?? '';

      const queue = recordQueue(env());
      let res: Response;
      try {
        res = await resend({ ids: [id, 'never-a-letter'] });
      } finally {
        queue.restore();
      }
      expect(res.status).toBe(200);
      const report = (await res.json()) as { resent: number; unsendable: { id: string; reason: string }[] };
      expect(report).toMatchObject({ resent: 0, notFound: ['never-a-letter'], more: false });
      expect(report.unsendable.map((u) => u.id)).toEqual([id]);
      expect(report.unsendable[0]?.reason).toMatch(/^not a queue message: kind/);
      expect(queue.messages).toEqual([]);
      expect(await lettersOf(person)).toHaveLength(1);
    });

    it('takes the oldest letters of a site up to the limit, and says when more remain', async () => {
      const site = uniqueId('dlq-site');
      const person = `anon:${uniqueId('dlq-limit')}`;
      // Letter n holds n + 1 events, so the order they are resent in shows.
      const message = (n: number) => ({ ...eventsMessage(person, n + 1), siteId: site });
      const letter = (n: number) => ({
        reason: 'bad row',
        messageId: uniqueId('m'),
        attempts: 1,
        failedAt: new Date(Date.now() - (10 - n) * 60_000).toISOString(),
        body: message(n),
      });
      await consume(deliveries([letter(0), letter(1), letter(2)]), 1, DEAD_LETTER_QUEUE);

      const queue = recordQueue(env());
      try {
        const first = await resend({ site, limit: 2 });
        expect(await first.json()).toMatchObject({ resent: 2, more: true });
        const second = await resend({ site, limit: 2 });
        expect(await second.json()).toMatchObject({ resent: 1, more: false });
      } finally {
        queue.restore();
      }
      expect(queue.messages.map((m) => (m as { events: unknown[] }).events.length)).toEqual([1, 2, 3]);
      expect(await rows('dead_letters', { site_id: { _eq: site } })).toEqual([]);
    });

    it('passes over the letters it cannot resend when called again with the cursor it answered', async () => {
      const site = uniqueId('dlq-cursor');
      const person = `anon:${uniqueId('dlq-cursor')}`;
      const letter = (body: unknown, failedAt: string) => ({
        reason: 'bad row',
        messageId: uniqueId('m'),
        attempts: 1,
        failedAt,
        body,
      });
      const broken = { kind: 'no-such-kind', siteId: site, personId: person };
      const good = (n: number) => ({ ...eventsMessage(person, n), siteId: site });
      // One failure time holds three letters that cannot be resent and two that can (more
      // than a call's limit of 2); a later one holds one more.
      const t0 = new Date(Date.now() - 10 * 60_000).toISOString();
      const t1 = new Date(Date.now() - 5 * 60_000).toISOString();
      const atT0 = [
        letter(broken, t0),
        letter(good(1), t0),
        letter(broken, t0),
        letter(good(2), t0),
        letter(broken, t0),
      ];
      await consume(deliveries([...atT0, letter(good(3), t1)]), 1, DEAD_LETTER_QUEUE);

      const queue = recordQueue(env());
      try {
        // The whole failure time is taken, though it holds more letters than the limit.
        const first = (await (await resend({ site, limit: 2 })).json()) as {
          next?: string;
          unsendable: { id: string }[];
        };
        expect(first).toMatchObject({ resent: 2, more: true });
        expect(first.unsendable).toHaveLength(3);
        // Without the cursor the three letters that stayed would fill the page again.
        expect(await (await resend({ site, limit: 2 })).json()).toMatchObject({ resent: 0, more: true });
        // An operator deletes them meanwhile: the cursor still starts right after that time.
        await admin(
          'DELETE',
          '/items/dead_letters',
          first.unsendable.map((u) => u.id),
        );
        const second = await resend({ site, limit: 2, after: first.next });
        expect(await second.json()).toMatchObject({ resent: 1, unsendable: [], more: false });
      } finally {
        queue.restore();
      }
      expect(queue.messages.map((m) => (m as { events: unknown[] }).events.length).toSorted()).toEqual([
        1, 2, 3,
      ]);
      expect(await rows('dead_letters', { site_id: { _eq: site } })).toEqual([]);
    });

    it('refuses a bad body with a message saying what to send, and callers without the admin token', async () => {
      const bodies = [
        '{',
        { ids: [] },
        { limit: 0 },
        { ids: 'a' },
        { everything: true },
        { ids: ['a'], limit: 1 },
      ];
      for (const body of [...bodies, { after: 'not a cursor' }]) {
        const res = await resend(body);
        expect(res.status).toBe(400);
        const answer = (await res.json()) as { error: { code: string; message: string } };
        expect(answer.error.code).toBe('invalid_envelope');
        expect(answer.error.message).toMatch(/expected \{ "ids"|"next" of the previous answer/);
      }
      expect((await resend({}, { authorization: 'Bearer wrong' })).status).toBe(401);
    });
  });
});
