/**
 * The shop's calls to the Worker for "delete my data": they name the shop's site (a Worker
 * serving more than one site refuses an erasure without it) and read the Worker's real
 * answers; an erasure request erases only those the edge holds, and never, without their
 * session, the account an anonymous id was merged into at sign-in.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deleteMyData } from './delete-my-data.ts';
import { BELONGS_TO_AN_ACCOUNT, eraseAll, erasureTargets } from './erasure.ts';
import { erasePerson, lookUpPerson } from './people.ts';

const WORKER = 'http://worker.test';
const ERASURE_ID = '01JD8X3Q4Z5R6S7T8V9W0XYZ00';

/**
 * A stand-in for the Worker's DELETE /v1/people/:id with two sites configured
 * (packages/edge-worker/src/admin/routes.ts): `?site=` is required, unknown sites are 400.
 */
function twoSiteWorker(
  answer: (site: string, personId: string) => Response = (_, personId) =>
    Response.json({
      erased: true,
      personId,
      anonymousIds: personId.startsWith('anon:') ? 1 : 0,
      erasureId: ERASURE_ID,
    }),
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
  vi.stubEnv('ATTUNE_PRIVACY_TOKEN', 'admin-token');
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
    // The erasure's id comes back: the visitor's reference to its proof.
    expect(await erasePerson({ kind: 'anon', id: '01JD8X3Q4Z5R6S7T8V9W0XYZAB' })).toEqual({
      ok: true,
      erasureId: ERASURE_ID,
    });
    expect(calls).toEqual(['DELETE /v1/people/anon%3A01JD8X3Q4Z5R6S7T8V9W0XYZAB?site=demo']);
  });

  it('names the site of ATTUNE_SITE_ID', async () => {
    shopEnvWith({ ATTUNE_SITE_ID: 'outlet' });
    const calls = twoSiteWorker();
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({ ok: true, erasureId: ERASURE_ID });
    expect(calls).toEqual(['DELETE /v1/people/user%3Auser_ada?site=outlet']);
  });

  it('reports an unknown site or a wrong token as refused, not erased', async () => {
    shopEnvWith({ ATTUNE_SITE_ID: 'nope' });
    twoSiteWorker();
    expect(await erasePerson({ kind: 'user', id: 'user_ada' })).toEqual({
      ok: false,
      retryable: false,
      status: 400,
    });
    shopEnvWith({ ATTUNE_PRIVACY_TOKEN: 'wrong' });
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

/** What the edge holds about one person key, as `GET /v1/people/:id?scope=edge` answers it. */
type Held = Record<string, unknown>;

/**
 * A stand-in for the Worker's person routes on the demo site, with what its edge holds
 * (packages/edge-worker/src/admin/routes.ts): GET `?scope=edge` answers 200
 * `{siteId, personId, ...export}` or 404 `not_found`; DELETE answers 200
 * `{erased: true, personId, anonymousIds}` for anyone, known or not, and erases a merged
 * browser's whole person.
 */
function workerHolding(edge: Record<string, Held>, downstreamOnly: string[] = []) {
  const deleted: string[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      if (new Headers(init?.headers).get('authorization') !== 'Bearer admin-token')
        return Response.json({ error: { code: 'unauthorized' } }, { status: 401 });
      const key = decodeURIComponent(url.pathname.replace('/v1/people/', ''));
      const held = edge[key];
      if (init?.method === 'DELETE') {
        deleted.push(key);
        const person = typeof held?.aliasOf === 'string' ? held.aliasOf : key;
        return Response.json({
          erased: true,
          personId: person,
          anonymousIds: 1,
          erasureId: erasureIdOf(key),
        });
      }
      if (url.searchParams.get('scope') !== 'edge') {
        // Asked everywhere: only for an id the edge holds nothing of.
        if (held !== undefined) return new Response('', { status: 500 });
        return downstreamOnly.includes(key)
          ? Response.json({ siteId: 'demo', personId: key, downstream: { events: [{ id: 'e1' }] } })
          : Response.json({ error: { code: 'not_found', message: 'nothing is held' } }, { status: 404 });
      }
      if (held === undefined)
        return Response.json(
          { error: { code: 'not_found', message: 'nothing is held about this person at the edge' } },
          { status: 404 },
        );
      return Response.json({ siteId: 'demo', personId: key, seenEventIds: 3, ...held });
    }),
  );
  return deleted;
}

const ALICE_BROWSER = '01JD8X3Q4Z5R6S7T8V9W0ALICE';
const MALLORY_BROWSER = '01JD8X3Q4Z5R6S7T8V9W0MALLO';
/** The erasure id the stand-in Worker answers for a person key (a ULID, one per person). */
const erasureIdOf = (key: string): string =>
  `01JD8X3Q4Z5R6S7T8V9W0ERAS${key === 'user:alice' ? 1 : key === `anon:${ALICE_BROWSER}` ? 2 : 3}`;
const FRESH_BROWSER = '01JD8X3Q4Z5R6S7T8V9W0FRESH';

/** The edge after Alice signed in on her browser (merged into her) and Mallory browsed anonymously. */
const EDGE: Record<string, Held> = {
  [`anon:${ALICE_BROWSER}`]: { aliasOf: 'user:alice', identity: { siteId: 'demo', personKey: 'user:alice' } },
  'user:alice': { profile: { userId: 'alice', anonymousIds: [ALICE_BROWSER] } },
  [`anon:${MALLORY_BROWSER}`]: { profile: { anonymousIds: [] } },
};

/** POST /api/erase's logic (app/api/erase/route.ts) on the stand-in Worker. */
function postErase(userId: string | undefined, anonymousId: string, cookieAnonymousId?: string) {
  const targets = erasureTargets({ userId, anonymousId, cookieAnonymousId });
  return eraseAll(targets, userId, { lookUp: lookUpPerson, erase: erasePerson });
}

describe('an erasure request, against the Worker', () => {
  it('does not erase Alice’s account for someone who names the id her browser had before she signed in', async () => {
    shopEnvWith({});
    const deleted = workerHolding(EDGE);
    expect(await postErase(undefined, ALICE_BROWSER)).toEqual({
      status: 403,
      body: { error: BELONGS_TO_AN_ACCOUNT },
    });
    // Nor by the cookie, nor alongside the requester's own id: nothing at all is erased.
    expect(await postErase(undefined, MALLORY_BROWSER, ALICE_BROWSER)).toMatchObject({ status: 403 });
    expect(await postErase('mallory', MALLORY_BROWSER, ALICE_BROWSER)).toMatchObject({ status: 403 });
    expect(deleted).toEqual([]);
  });

  it('does not erase again, downstream, the account a browser was erased with', async () => {
    shopEnvWith({});
    const deleted = workerHolding({
      [`anon:${ALICE_BROWSER}`]: {
        erasedAt: '2026-11-27T10:00:00.000Z',
        erasedWith: { personKey: 'user:alice', anonymousIds: [ALICE_BROWSER], userId: 'alice' },
      },
    });
    expect(await postErase(undefined, ALICE_BROWSER)).toMatchObject({ status: 403 });
    expect(deleted).toEqual([]);
  });

  it('erases Alice and her browser when Alice, signed in, asks', async () => {
    shopEnvWith({});
    const deleted = workerHolding(EDGE);
    expect(await postErase('alice', ALICE_BROWSER)).toEqual({
      status: 200,
      body: {
        erased: ['user', 'anon'],
        references: [erasureIdOf('user:alice'), erasureIdOf(`anon:${ALICE_BROWSER}`)],
      },
    });
    expect(deleted).toEqual(['user:alice', `anon:${ALICE_BROWSER}`]);
  });

  it('erases an anonymous visitor’s own profile without an account', async () => {
    shopEnvWith({});
    const deleted = workerHolding(EDGE);
    expect(await postErase(undefined, MALLORY_BROWSER)).toEqual({
      status: 200,
      body: { erased: ['anon'], references: [erasureIdOf(`anon:${MALLORY_BROWSER}`)] },
    });
    expect(deleted).toEqual([`anon:${MALLORY_BROWSER}`]);
  });

  it('erases an id the edge no longer holds but Directus does (events logged, a retention erasure pending)', async () => {
    shopEnvWith({});
    const deleted = workerHolding(EDGE, [`anon:${FRESH_BROWSER}`]);
    expect(await postErase(undefined, FRESH_BROWSER)).toEqual({
      status: 200,
      body: { erased: ['anon'], references: [erasureIdOf(`anon:${FRESH_BROWSER}`)] },
    });
    expect(deleted).toEqual([`anon:${FRESH_BROWSER}`]);
  });

  it('finds nothing to erase for an id the edge never held (a browser that chose "reject all")', async () => {
    shopEnvWith({});
    const deleted = workerHolding(EDGE);
    const outcome = await postErase(undefined, FRESH_BROWSER);
    expect(outcome).toEqual({ status: 200, body: { erased: [], references: [] } });
    expect(deleted).toEqual([]);
    // What the page then says: not "Done", and the SDK keeps its id.
    const calls: string[] = [];
    const page = await deleteMyData(
      {
        flush: async () => {},
        reset: () => calls.push('reset'),
        anonymousId: () => FRESH_BROWSER,
        consent: {
          get: () => ({ categories: { analytics: true }, policyVersion: '1', decided: true }),
          set: () => calls.push('consent'),
        },
      },
      { requestErasure: async () => Response.json(outcome.body, { status: outcome.status }) },
    );
    expect(page).toEqual({ kind: 'nothing' });
    expect(calls).toEqual([]);
  });

  it('does not take another server’s 404 for "nothing held"', async () => {
    shopEnvWith({});
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('not found', { status: 404 })),
    );
    expect(await lookUpPerson({ kind: 'anon', id: FRESH_BROWSER })).toMatchObject({ ok: false });
    expect(await postErase(undefined, FRESH_BROWSER)).toMatchObject({ status: 502 });
  });
});
