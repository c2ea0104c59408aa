/**
 * The dead-letter queue's consumer in workerd, without a Directus: what it logs when it
 * cannot keep letters (the Directus-backed behaviour is in test/directus/dead-letters.test.ts).
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { directusClient } from '../directus/client.ts';
import worker from '../index.ts';
import { readStats } from '../observability/index.ts';
import { DEAD_LETTER_QUEUE, storeDeadLetters } from './dead-letters.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the dead-letter consumer while Directus is unavailable', () => {
  it('says in its log why it retried, not only how many', async () => {
    // Letters reach this queue after a day of failed syncs; if they cannot be kept either,
    // the reason (here: Directus not answering) is all an operator has to act on.
    const unreachable = directusClient({
      url: 'https://directus.example.com',
      token: 't',
      fetch: async () => {
        throw new Error('Network connection lost.');
      },
    });
    const warned: string[] = [];
    vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
      warned.push(String(line));
    });
    const batch = createMessageBatch<unknown>(DEAD_LETTER_QUEUE, [
      {
        id: 'letter-1',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: 'not pairs' },
      },
    ]);
    const report = await storeDeadLetters(batch, env, { directus: unreachable, isErased: async () => false });
    expect(report).toMatchObject({ stored: 0, retried: 1 });
    const line = warned
      .map((w) => JSON.parse(w) as Record<string, unknown>)
      .find((w) => w.msg === 'sync.dead_letters');
    expect(line?.cause).toBe('Directus unreachable (GET /items/dead_letters): Network connection lost.');
  });
});

describe('a dead letter Directus refuses', () => {
  it('is counted dead_letter_refused in the stats object, not only logged', async () => {
    // A row Directus refuses outright (400) cannot be kept: the message is acked and lost.
    // An operator reading GET /v1/admin/stats saw nothing of it.
    const refusing = directusClient({
      url: 'https://directus.example.com',
      token: 't',
      fetch: async (_input, init) =>
        (init?.method ?? 'GET') === 'GET'
          ? Response.json({ data: [] })
          : Response.json(
              { errors: [{ message: 'Invalid payload.', extensions: { code: 'INVALID_PAYLOAD' } }] },
              { status: 400 },
            ),
    });
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const before = (await readStats(env)).dead_letter_refused;
    const batch = createMessageBatch<unknown>(DEAD_LETTER_QUEUE, [
      {
        id: 'refused-1',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [] },
      },
      {
        id: 'refused-2',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [] },
      },
    ]);
    const report = await storeDeadLetters(batch, env, { directus: refusing, isErased: async () => false });
    expect(report).toMatchObject({ stored: 0, refused: 2 });
    // Stored in the stats object by the consumer itself, as another isolate reads it.
    const stored = await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName('stats')).readCounts();
    expect(stored.dead_letter_refused ?? 0).toBe(before + 2);
  });
});

describe('which queue is the dead-letter queue', () => {
  it('consumes a dead-letter queue renamed for another deployment (`…-dlq`) as one, not as events', async () => {
    // Queue names are per account: a second deployment (staging) in the same account needs
    // other names. Taken for the events queue, its letters were dead-lettered again, each
    // wrapped in a new letter, round and round, and none was ever kept in Directus.
    const sent: unknown[] = [];
    const dlq = env.EVENTS_DLQ;
    const watched: Queue = {
      metrics: () => dlq.metrics(),
      send: async (message, options) => {
        sent.push(message);
        return dlq.send(message, options);
      },
      sendBatch: (messages, options) => dlq.sendBatch(messages, options),
    };
    // A Directus that refuses the token: a letter that reaches the dead-letter consumer is retried.
    // Vars are typed as wrangler.toml's literal values; a test's other Directus is not one.
    const staging = {
      ...env,
      DIRECTUS_URL: 'http://directus.fixture.test',
      DIRECTUS_TOKEN: 'not-the-sync-token',
      EVENTS_DLQ: watched,
    } as unknown as Env;
    const letter = {
      reason: 'Directus rejected the events row: value too long for name',
      messageId: 'original-1',
      attempts: 3,
      failedAt: '2026-11-26T09:00:00.000Z',
      body: { kind: 'events', siteId: 'demo', personId: 'anon:a-1', purposes: ['analytics'], events: [] },
    };
    const batch = createMessageBatch<unknown>('attune-events-staging-dlq', [
      { id: 'letter-2', timestamp: new Date(), attempts: 1, body: letter },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, staging);
    const result = await getQueueResult(batch, ctx);
    expect(sent).toEqual([]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(['letter-2']);
  });
});
