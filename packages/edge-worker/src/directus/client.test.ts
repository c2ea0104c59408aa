/**
 * The Directus client's error classification and bulk semantics, and the consumer's
 * isolation of a poison item, against a scripted fetch (pure logic; the real Directus is
 * exercised in test/directus/).
 */
import { createMessageBatch } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { syncBatch } from '../sync/consumer.ts';
import { DirectusError, directusClient, directusFromEnv, isRetryableStatus } from './client.ts';

function scripted(handler: (method: string, url: URL, body: unknown) => Response | Promise<Response>) {
  const calls: string[] = [];
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    calls.push(`${method} ${url.pathname}`);
    const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    return handler(method, url, body);
  };
  return { calls, fetch: fetchImpl as typeof fetch };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const failure = (status: number, code: string) =>
  json(status, { errors: [{ message: `failed: ${code}`, extensions: { code } }] });

describe('DirectusError', () => {
  it('calls network failures, 5xx, 429, 408 and auth failures retryable and other 4xx permanent', async () => {
    expect([0, 401, 403, 408, 429, 500, 503].every(isRetryableStatus)).toBe(true);
    expect([400, 404, 409, 422].some(isRetryableStatus)).toBe(false);

    const down = directusClient({
      url: 'http://d',
      token: 't',
      fetch: async () => Promise.reject(new TypeError('connect ECONNREFUSED')),
    });
    const err = await down.readItems('events').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectusError);
    expect(err).toMatchObject({ status: 0, retryable: true });

    const invalid = directusClient({
      url: 'http://d',
      token: 't',
      fetch: async () => failure(400, 'FAILED_VALIDATION'),
    });
    const err2 = await invalid.createItems('events', [{ id: 'x' }]).catch((e: unknown) => e);
    expect(err2).toMatchObject({ status: 400, code: 'FAILED_VALIDATION', retryable: false, conflict: false });
  });

  it('createMissing skips keys that exist and creates the rest in one request', async () => {
    const created: unknown[] = [];
    const s = scripted((method, url, body) => {
      if (method === 'GET') {
        expect(JSON.parse(url.searchParams.get('filter') ?? '{}')).toEqual({ id: { _in: ['a', 'b', 'c'] } });
        return json(200, { data: [{ id: 'b' }] });
      }
      created.push(body);
      return json(200, { data: [] });
    });
    const n = await directusClient({ url: 'http://d', token: 't', fetch: s.fetch }).createMissing('events', [
      { id: 'a' },
      { id: 'b' },
      { id: 'c' },
    ]);
    expect(n).toBe(2);
    expect(created).toEqual([[{ id: 'a' }, { id: 'c' }]]);
    expect(s.calls).toEqual(['GET /items/events', 'POST /items/events']);
  });
});

describe('directusFromEnv', () => {
  it('gives every call a time limit by default (a Directus that never answered held a consumer batch until the runtime ended it)', async () => {
    const signals: unknown[] = [];
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (_input, init) => {
      signals.push(init?.signal);
      return json(200, { data: [] });
    });
    try {
      await directusFromEnv(env).readItems('people', { limit: 1 });
    } finally {
      spy.mockRestore();
    }
    expect(signals).toHaveLength(1);
    expect(signals[0]).toBeInstanceOf(AbortSignal);
  });
});

describe('directusFromEnv without DIRECTUS_URL or DIRECTUS_TOKEN', () => {
  // A deployment that lost DIRECTUS_URL from its vars (moved to a secret never set) threw a
  // TypeError before any message was settled: the dead-letter consumer too, so after its
  // retries the queue dropped every message, erasures included, with no letter kept.
  const unset = { ...env, DIRECTUS_URL: undefined, DIRECTUS_TOKEN: undefined } as unknown as Env;

  it('the sync retries with backoff and says which setting is missing', async () => {
    const errors: string[] = [];
    const warned: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
      errors.push(String(line));
    });
    vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
      warned.push(String(line));
    });
    try {
      const batch = createMessageBatch<unknown>('attune-events', [
        {
          id: 'unset-1',
          timestamp: new Date(),
          attempts: 1,
          body: {
            kind: 'events',
            siteId: 'demo',
            personId: 'anon:unset',
            purposes: ['analytics'],
            events: [
              {
                event: {
                  id: '01JDZ000000000000000000AB1',
                  type: 'track',
                  name: 'page.viewed',
                  timestamp: '2026-11-26T09:00:00.000Z',
                  anonymousId: 'unset',
                  schemaVersion: 1,
                },
                enrichment: {
                  receivedAt: '2026-11-26T09:00:00.000Z',
                  correctedTimestamp: '2026-11-26T09:00:00.000Z',
                  device: 'desktop',
                },
              },
            ],
          },
        },
      ]);
      const report = await syncBatch(batch, unset, { isErased: async () => false });
      expect(report).toMatchObject({ acked: 0, retried: 1 });
      const messages = errors.map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(messages).toContain(
        'DIRECTUS_URL is unset: no Directus call can be made (the sync retries, the catalog and consent categories are not read); set it in wrangler.toml [vars]',
      );
      expect(messages).toContain(
        "DIRECTUS_TOKEN is unset: Directus refuses every call; set the attune-sync user's static token with wrangler secret put DIRECTUS_TOKEN",
      );
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('consumer isolation', () => {
  const message = (id: string, poison: boolean) => ({
    id,
    timestamp: new Date(),
    attempts: 1,
    body: {
      kind: 'event',
      siteId: 'demo',
      personId: 'anon:a',
      event: {
        id,
        type: 'track',
        name: poison ? 'poison.item' : 'product.viewed',
        timestamp: '2026-11-26T10:00:00.000Z',
        anonymousId: 'a',
        schemaVersion: 1,
      },
      enrichment: { receivedAt: '2026-11-26T10:00:00.000Z', correctedTimestamp: '2026-11-26T10:00:00.000Z' },
      purposes: ['analytics'],
    },
  });

  it('a row Directus rejects (4xx) goes to the DLQ alone; its batch is written', async () => {
    const stored: string[] = [];
    const s = scripted((method, _url, body) => {
      if (method === 'GET') return json(200, { data: [] });
      const rows = body as { id: string; name: string }[];
      if (rows.some((r) => r.name === 'poison.item')) return failure(400, 'FAILED_VALIDATION');
      stored.push(...rows.map((r) => r.id));
      return json(200, { data: [] });
    });
    const ids = ['01K8ZJ3Q7W8X9Y0Z1A2B3C4D50', '01K8ZJ3Q7W8X9Y0Z1A2B3C4D51', '01K8ZJ3Q7W8X9Y0Z1A2B3C4D52'];
    const batch = createMessageBatch('attune-events', [
      message(ids[0] ?? '', false),
      message(ids[1] ?? '', true),
      message(ids[2] ?? '', false),
    ]);
    const letters: unknown[] = [];
    const dlq = vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(async (body) => {
      letters.push(body);
      return undefined as unknown as QueueSendResponse;
    });
    try {
      const report = await syncBatch(batch, env, {
        directus: directusClient({ url: 'http://d', token: 't', fetch: s.fetch }),
      });
      expect(report).toMatchObject({ acked: 2, deadLettered: 1, retried: 0 });
      expect(stored.sort()).toEqual([ids[0], ids[2]]);
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({
        messageId: ids[1],
        reason: expect.stringContaining('FAILED_VALIDATION'),
      });
    } finally {
      dlq.mockRestore();
    }
  });

  it('a whole batch is retried, not dead-lettered, while Directus answers 503', async () => {
    const s = scripted(() => failure(503, 'SERVICE_UNAVAILABLE'));
    const batch = createMessageBatch('attune-events', [message('01K8ZJ3Q7W8X9Y0Z1A2B3C4D53', false)]);
    const report = await syncBatch(batch, env, {
      directus: directusClient({ url: 'http://d', token: 't', fetch: s.fetch }),
    });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 0 });
  });
});
