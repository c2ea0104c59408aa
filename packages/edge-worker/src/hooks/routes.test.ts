/**
 * POST /v1/hooks/directus: bounded reads of unauthenticated bodies, a refused KV write
 * answered as worth retrying, a weak HOOK_SECRET reported without flooding the log, and a
 * signed hook accepted once (a replay refused, distinct hooks of a burst all taken).
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { CATALOG_VERSION_KEY } from '../catalog/index.ts';
import { call } from '../ingest/test-support.ts';
import { signHookBody } from './signature.ts';

/** A signed hook: its body and X-Attune-Signature, as the Directus Flow builds them. */
interface SignedHook {
  body: string;
  signature: string;
}

/** A change notice for `collection` signed with `secret`; unique keys unless given, so no two tests send the same hook. */
async function signedHook(
  collection: string,
  secret: string,
  fields: { keys?: string[]; at?: string } = {},
): Promise<SignedHook> {
  const body = JSON.stringify({
    source: 'directus',
    collection,
    event: 'items.update',
    keys: fields.keys ?? [crypto.randomUUID()],
    at: fields.at ?? new Date().toISOString(),
  });
  return { body, signature: await signHookBody(secret, body) };
}

/** Sends a signed hook (again, for a replay) with `bindings`. */
function send(hook: SignedHook, bindings: Env = env, signature = hook.signature): Promise<Response> {
  return call(hook.body, {
    path: '/v1/hooks/directus',
    origin: null,
    env: bindings,
    headers: { 'content-type': 'application/json', 'x-attune-signature': signature },
  });
}

/** A signed change notice for `collection`, sent with `bindings`. */
async function notify(collection: string, bindings: Env): Promise<Response> {
  return send(await signedHook(collection, bindings.HOOK_SECRET), bindings);
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
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

describe('POST /v1/hooks/directus sent again (a replay)', () => {
  it('refuses a replay of an accepted hook with 409 replayed, however its signature header is written, and changes nothing', async () => {
    const hook = await signedHook('products', env.HOOK_SECRET);
    expect((await send(hook)).status).toBe(200);
    await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, 'v-after-the-hook');
    // Before, each replay within the 10-minute window cleared the caches and wrote KV again.
    for (const signature of [hook.signature, ` ${hook.signature.toUpperCase()} `]) {
      const replay = await send(hook, env, signature);
      expect(replay.status).toBe(409);
      const error = await errorOf(replay);
      expect(error.code).toBe('replayed');
      expect(error.message).toContain('already accepted');
    }
    expect(await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe('v-after-the-hook');
  });

  it('takes exactly one of the same hook sent many times at once', async () => {
    const hook = await signedHook('slot_content', env.HOOK_SECRET);
    const statuses = await Promise.all(Array.from({ length: 6 }, () => send(hook).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
  });

  it("takes every hook of a bulk edit's burst, even stamped in the same millisecond", async () => {
    const at = new Date().toISOString();
    const burst = await Promise.all([
      ...Array.from({ length: 12 }, (_, i) =>
        signedHook('products', env.HOOK_SECRET, { keys: [`p-${i}`], at }),
      ),
      signedHook('slot_content', env.HOOK_SECRET, { keys: ['p-0'], at }),
      signedHook('trigger_rules', env.HOOK_SECRET, { keys: ['p-0'], at }),
    ]);
    const statuses = await Promise.all(burst.map((hook) => send(hook).then((r) => r.status)));
    expect(statuses).toEqual(burst.map(() => 200));
  });

  it('takes the same notice again after answering it 503 (KV refused), as that answer asks, and only once', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const hook = await signedHook('products', env.HOOK_SECRET);
      expect((await send(hook, refusingWrites())).status).toBe(503);
      expect((await send(hook)).status).toBe(200);
      expect((await send(hook)).status).toBe(409);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('answers 503 and invalidates nothing when it cannot check for a replay', async () => {
    const warnings = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const unreachable = {
        idFromName: (name: string) => env.HOOK_RECEIPTS.idFromName(name),
        get: () => ({ claim: () => Promise.reject(new Error('Durable Object overloaded')) }),
      };
      const bindings = { ...env, HOOK_RECEIPTS: unreachable } as unknown as Env;
      await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, 'v-before-the-hook');
      const res = await send(await signedHook('products', env.HOOK_SECRET), bindings);
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await errorOf(res)).code).toBe('receipts_unavailable');
      expect(await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe('v-before-the-hook');
      expect(warnings.mock.calls.some((c) => String(c[0]).includes('hook.receipt_unavailable'))).toBe(true);
    } finally {
      warnings.mockRestore();
    }
  });
});
