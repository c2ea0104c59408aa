/**
 * POST /api/erase's answer to the browser after an erasure: the session and the Worker's
 * edge-proxy cookies go, host-only on `Path=/` as the Worker's proxy writes them
 * (packages/edge-worker/src/proxy/cookies.ts), so the next visitor is a stranger to the edge:
 * no `attune_aid` naming the erased visitor, and no `attune_consent` holding their grant
 * (under which the edge would mint a new id before the banner is answered).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

const ANONYMOUS_ID = '01JD8X3Q4Z5R6S7T8V9W0XYZAB';

/** The request's cookies, as next/headers gives them to the route. */
const requestCookies = new Map<string, string>();
vi.mock('next/headers', () => ({
  cookies: async () => ({
    get: (name: string) => {
      const value = requestCookies.get(name);
      return value === undefined ? undefined : { name, value };
    },
  }),
}));

/** A Worker that holds the named anonymous id (no account) and erases it. */
function workerHolding() {
  vi.stubEnv('ATTUNE_WORKER_URL', 'http://worker.test');
  vi.stubEnv('ATTUNE_PRIVACY_TOKEN', 'privacy-token');
  vi.stubGlobal(
    'fetch',
    vi.fn(async (_input: string | URL | Request, init?: RequestInit) =>
      init?.method === 'DELETE'
        ? Response.json({
            erased: true,
            personId: `anon:${ANONYMOUS_ID}`,
            anonymousIds: 1,
            erasureId: ERASURE_ID,
          })
        : Response.json({ profile: {} }),
    ),
  );
}

/** The id the Worker's DELETE answers: the shop passes it on as the visitor's reference. */
const ERASURE_ID = '01JD8X3Q4Z5R6S7T8V9W0XYZ00';

async function erase(status: number, body: unknown = { erased: [], references: [] }) {
  const { POST } = await import('../app/api/erase/route.ts');
  const res = await POST(
    new Request('http://shop.test/api/erase', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ anonymousId: ANONYMOUS_ID }),
    }),
  );
  expect(res.status).toBe(status);
  expect(await res.json()).toEqual(body);
  return res.headers.getSetCookie();
}

afterEach(() => {
  requestCookies.clear();
  vi.unstubAllGlobals();
  vi.unstubAllEnvs();
});

describe('POST /api/erase, edge-proxy mode', () => {
  it('expires the session, attune_aid and attune_consent, host-only on Path=/, once someone was erased', async () => {
    workerHolding();
    requestCookies.set(
      'attune_consent',
      encodeURIComponent('{"categories":{"analytics":true},"policyVersion":"1"}'),
    );
    const set = await erase(200, { erased: ['anon'], references: [ERASURE_ID] });
    for (const name of ['shop_session', 'attune_aid', 'attune_consent']) {
      const cookie = set.find((c) => c.startsWith(`${name}=`));
      expect(cookie, name).toBeDefined();
      expect(cookie).toMatch(/; Path=\/(;|$)/);
      expect(cookie).toMatch(/Max-Age=0/);
      expect(cookie).not.toMatch(/Domain=/i);
    }
  });

  it('changes no cookie when nobody was erased', async () => {
    vi.stubEnv('ATTUNE_WORKER_URL', 'http://worker.test');
    vi.stubEnv('ATTUNE_PRIVACY_TOKEN', 'privacy-token');
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Response.json({ error: { code: 'not_found' } }, { status: 404 })),
    );
    expect(await erase(200)).toEqual([]);
  });
});
