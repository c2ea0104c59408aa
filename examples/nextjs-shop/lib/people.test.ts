/**
 * The shop's erasure call to the Worker: it names the shop's site (a Worker serving more
 * than one site refuses an erasure without it) and reads the Worker's real answers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { erasePerson } from './people.ts';

const WORKER = 'http://worker.test';

/**
 * A stand-in for the Worker's DELETE /v1/people/:id with two sites configured
 * (packages/edge-worker/src/admin/routes.ts): `?site=` is required, unknown sites are 400.
 */
function twoSiteWorker(
  answer: (site: string, personId: string) => Response = () => Response.json({ erased: true }),
) {
  const calls: string[] = [];
  const fetchMock = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push(`${init?.method} ${url.pathname}${url.search}`);
    if (init?.method !== 'DELETE') return new Response('', { status: 404 });
    if (new Headers(init.headers).get('authorization') !== 'Bearer admin-token')
      return Response.json({ error: { code: 'unauthorized' } }, { status: 401 });
    const site = url.searchParams.get('site');
    if (site !== 'demo' && site !== 'outlet')
      return Response.json(
        { error: { code: 'invalid_envelope', message: 'unknown site; pass ?site=<site id>' } },
        { status: 400 },
      );
    return answer(site, decodeURIComponent(url.pathname.replace('/v1/people/', '')));
  });
  vi.stubGlobal('fetch', fetchMock);
  return calls;
}

function shopEnvWith(vars: Record<string, string>) {
  vi.stubEnv('ATTUNE_WORKER_URL', WORKER);
  vi.stubEnv('ATTUNE_ADMIN_TOKEN', 'admin-token');
  vi.stubEnv('ATTUNE_SITE_ID', '');
  for (const [k, v] of Object.entries(vars)) vi.stubEnv(k, v);
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.unstubAllEnvs();
});

describe('erasePerson', () => {
  it('erases on a Worker that serves more than one site: it names the demo site by default', async () => {
    shopEnvWith({});
    const calls = twoSiteWorker();
    expect(await erasePerson({ kind: 'anon', id: '01JD8X3Q4Z5R6S7T8V9W0XYZAB' })).toEqual({ ok: true });
    expect(calls).toEqual(['DELETE /v1/people/anon%3A01JD8X3Q4Z5R6S7T8V9W0XYZAB?site=demo']);
  });

  it('names the site of ATTUNE_SITE_ID', async () => {
    shopEnvWith({ ATTUNE_SITE_ID: 'outlet' });
    const calls = twoSiteWorker();
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({ ok: true });
    expect(calls).toEqual(['DELETE /v1/people/user%3Auser_ada?site=outlet']);
  });

  it('reports an unknown site or a wrong admin token as refused, not erased', async () => {
    shopEnvWith({ ATTUNE_SITE_ID: 'nope' });
    twoSiteWorker();
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({
      ok: false,
      retryable: false,
      status: 400,
    });
    shopEnvWith({ ATTUNE_ADMIN_TOKEN: 'wrong' });
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({
      ok: false,
      retryable: false,
      status: 401,
    });
  });

  it('reports the Worker’s 503 (erased at the edge, not yet queued for Directus) as worth retrying', async () => {
    shopEnvWith({});
    twoSiteWorker(() => Response.json({ error: { code: 'queue_unavailable' } }, { status: 503 }));
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({
      ok: false,
      retryable: true,
      status: 503,
    });
  });

  it('does not take a 404 (something other than the Worker’s erasure answered) for an erasure', async () => {
    shopEnvWith({});
    twoSiteWorker(() => new Response('not found', { status: 404 }));
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toMatchObject({ ok: false });
  });
});
