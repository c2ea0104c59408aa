/**
 * POST /v1/hooks/directus: bounded reads of unauthenticated bodies, a refused KV write
 * answered as worth retrying, and a weak HOOK_SECRET reported without flooding the log.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { call } from '../ingest/test-support.ts';
import { signHookBody } from './signature.ts';

/** A signed change notice for `collection`, sent with `bindings`. */
async function notify(collection: string, bindings: Env): Promise<Response> {
  const body = JSON.stringify({
    source: 'directus',
    collection,
    event: 'items.update',
    keys: ['1'],
    at: new Date().toISOString(),
  });
  return call(body, {
    path: '/v1/hooks/directus',
    origin: null,
    env: bindings,
    headers: {
      'content-type': 'application/json',
      'x-attune-signature': await signHookBody(bindings.HOOK_SECRET, body),
    },
  });
}

/** `env` with a KV that refuses every write, as it does a second write of a key within a second. */
function refusingWrites(): Env {
  const cache = {
    get: (key: string) => env.EDGE_CACHE.get(key),
    put: () => Promise.reject(new Error('KV PUT failed: 429 Too Many Requests')),
  };
  return { ...env, EDGE_CACHE: cache } as unknown as Env;
}

describe('POST /v1/hooks/directus', () => {
  it('answers 413 to a body of unknown length without reading all of it (no buffering before the signature check)', async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(32);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= 8 * 1024 * 1024) {
          controller.close();
          return;
        }
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await call(body, {
      path: '/v1/hooks/directus',
      origin: null,
      headers: { 'content-type': 'application/json', 'x-attune-signature': `sha256=${'0'.repeat(64)}` },
    });
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThan(1024 * 1024);
  });
});

describe('POST /v1/hooks/directus when KV refuses the change marker', () => {
  for (const collection of ['products', 'consent_categories']) {
    it(`answers 503 with Retry-After, never 500, for ${collection}`, { timeout: 15_000 }, async () => {
      vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        const res = await notify(collection, refusingWrites());
        // Before, 500 `internal`: a marketer's bulk edit writes the same key within a second.
        expect(res.status).toBe(503);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('kv_unavailable');
        expect(body.error.message).toContain("this isolate's own caches were cleared");
        expect(body.error.message).toContain('send the same notice again');
      } finally {
        vi.restoreAllMocks();
      }
    });
  }

  it('answers 200 once KV takes the write', async () => {
    const res = await notify('products', env);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, invalidated: ['catalog'] });
  });
});

describe('POST /v1/hooks/directus with a weak HOOK_SECRET', () => {
  it('refuses every hook and says so in one log line per isolate, not one per request', async () => {
    const weak = { ...env, HOOK_SECRET: 'short-hook' } as unknown as Env;
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 5; i++) {
        const res = await call('{}', {
          path: '/v1/hooks/directus',
          origin: null,
          env: weak,
          headers: { 'content-type': 'application/json', 'x-attune-signature': `sha256=${'0'.repeat(64)}` },
        });
        expect(res.status).toBe(401);
      }
      // Even signed with the secret itself: it verifies nothing.
      expect((await notify('products', weak)).status).toBe(401);
      const lines = errors.mock.calls.map((c) => String(c[0])).filter((line) => line.includes('HOOK_SECRET'));
      // Before, one line per request: any caller could flood the log.
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('HOOK_SECRET is shorter than 16 characters');
      expect(lines[0]).not.toContain('short-hook');
    } finally {
      errors.mockRestore();
    }
  });
});
