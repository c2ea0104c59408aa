/**
 * The people routes (GET and DELETE /v1/people/:id) and the admin token, as a caller meets
 * them: a weak ADMIN_TOKEN opens nothing, no answer is stored by a cache, a Directus outage
 * does not put person keys in the answer, and a caller holding a real token is told when
 * only `?site` is wrong, while anyone else learns nothing about which sites exist.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { anonId, call, collect, productView } from '../ingest/test-support.ts';
import { DEMO_PRIVACY_TOKEN, twoSitesEnv } from './test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const DEMO_TOKEN = DEMO_PRIVACY_TOKEN;

/** The demo site and a second one, each with its own privacy token. */
const twoSites = twoSitesEnv();

/** A request to the Worker with `Authorization: Bearer <token>` (none when undefined). */
function send(
  method: string,
  path: string,
  token: string | undefined,
  bindings: Env = env,
): Promise<Response> {
  return call(null, {
    method,
    path,
    origin: null,
    env: bindings,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

const personPath = (personKey: string, query: string) =>
  `/v1/people/${encodeURIComponent(personKey)}${query}`;

/** The error lines logged while `work` runs. */
async function errorsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await work();
    return errors.mock.calls.map((c) => String(c[0]));
  } finally {
    errors.mockRestore();
  }
}

describe('an ADMIN_TOKEN too short to be secret', () => {
  it('authorizes nothing, the site privacy token still works, and one log line names it (never the value)', async () => {
    // The value of the repo's .dev.vars.example, deployed as it was.
    const placeholder = {
      ...env,
      ADMIN_TOKEN: 'change-me',
      ATTUNE_SITE_SECRETS: JSON.stringify({
        demo: {
          identitySecret: 'test-identity-secret',
          serverKey: 'sk_test_server_key',
          privacyToken: DEMO_TOKEN,
        },
      }),
    } as unknown as Env;
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const person = personPath(`anon:${a}`, '?site=demo&scope=edge');
    const lines = await errorsDuring(async () => {
      // Before, 200 each: anyone who read the example file could read and erase every site's people.
      expect((await send('GET', '/v1/admin/stats', 'change-me', placeholder)).status).toBe(401);
      expect((await send('GET', person, 'change-me', placeholder)).status).toBe(401);
      expect(
        (await send('DELETE', personPath(`anon:${a}`, '?site=demo'), 'change-me', placeholder)).status,
      ).toBe(401);
      expect(
        (
          await send(
            'POST',
            `/v1/admin/replay/${encodeURIComponent(`anon:${a}`)}?site=demo`,
            'change-me',
            placeholder,
          )
        ).status,
      ).toBe(401);
      expect((await send('GET', person, DEMO_TOKEN, placeholder)).status).toBe(200);
    });
    const named = lines.filter((line) => line.includes('ADMIN_TOKEN'));
    expect(named).toHaveLength(1);
    expect(named[0]).toContain('ADMIN_TOKEN is shorter than 16 characters');
    expect(lines.join('\n')).not.toContain('change-me');
  });

  it('unset, refuses every admin request and says it is unset', async () => {
    const unset = { ...env, ADMIN_TOKEN: '' } as unknown as Env;
    const lines = await errorsDuring(async () => {
      expect((await send('GET', '/v1/admin/stats', '', unset)).status).toBe(401);
      expect((await send('GET', '/v1/admin/stats', undefined, unset)).status).toBe(401);
    });
    expect(lines.filter((line) => line.includes('ADMIN_TOKEN is unset'))).toHaveLength(1);
  });
});

describe('answers of the people routes', () => {
  it('are never stored by a cache, errors included', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const noStore = async (res: Promise<Response>, status: number) => {
      const answer = await res;
      expect(answer.status).toBe(status);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    };
    await noStore(send('GET', personPath(`anon:${a}`, '?site=demo&scope=edge'), 'test-admin-token'), 200);
    await noStore(
      send('GET', personPath('anon:nobody-here', '?site=demo&scope=edge'), 'test-admin-token'),
      404,
    );
    await noStore(send('GET', personPath('bogus', '?site=demo'), 'test-admin-token'), 400);
    await noStore(send('GET', personPath(`anon:${a}`, '?site=demo'), 'wrong'), 401);
    await noStore(send('GET', personPath(`anon:${a}`, ''), DEMO_TOKEN, twoSites), 400);
    const unreachable = { ...env, DIRECTUS_URL: 'http://127.0.0.1:9' } as unknown as Env;
    await noStore(send('GET', personPath(`anon:${a}`, '?site=demo'), 'test-admin-token', unreachable), 502);
    const queueDown = {
      ...env,
      EVENTS: {
        send: () => Promise.reject(new Error('queue down')),
        sendBatch: () => Promise.reject(new Error('queue down')),
      },
    } as unknown as Env;
    await noStore(send('DELETE', personPath(`anon:${a}`, '?site=demo'), 'test-admin-token', queueDown), 503);
    await noStore(send('DELETE', personPath(`anon:${a}`, '?site=demo'), 'test-admin-token'), 200);
    // An unexpected failure: the error handler's 500 carries it too.
    const broken = {
      ...env,
      PROFILE: {
        idFromName: () => {
          throw new Error('storage unavailable');
        },
      },
    } as unknown as Env;
    await errorsDuring(() =>
      noStore(send('GET', personPath(`anon:${a}`, '?site=demo&scope=edge'), 'test-admin-token', broken), 500),
    );
  });

  it('keep the answer of a method no people route serves, which the edge proxy passed on: no 500', async () => {
    // Found by src/app.fuzz.test.ts. `/%761/…` is `/v1/…` to the router but not to the proxy,
    // which passed the OPTIONS on to the origin: its answer's headers cannot be changed, and
    // marking it no-store threw.
    const res = await send(
      'OPTIONS',
      personPath('user:ada', '?site=demo').replace('/v1/', '/%761/'),
      'test-admin-token',
    );
    expect(res.status).toBe(404);
    expect(res.headers.get('x-origin')).toBe('fixture');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('name no person key when Directus cannot be reached (the request path, without its query)', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const unreachable = { ...env, DIRECTUS_URL: 'http://127.0.0.1:9' } as unknown as Env;
    const res = await send('GET', personPath(`anon:${a}`, '?site=demo'), 'test-admin-token', unreachable);
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('directus_unavailable');
    expect(error.message).toMatch(/Directus unreachable \(GET \/items\/[a-z_]+\)/);
    // Before: `(GET /items/people?filter=…anon%3A<id>…)`, the person's keys in the answer.
    expect(error.message).not.toContain('filter');
    expect(error.message).not.toContain('%3A');
    expect(error.message).not.toContain(a);
  });
});

describe('a people request whose ?site names no site', () => {
  const a = `anon:${anonId()}`;
  const unauthorized = async (res: Promise<Response>) => {
    const answer = await res;
    expect(answer.status).toBe(401);
    return (await answer.json()) as { error: { code: string; message: string } };
  };
  const badRequest = async (res: Promise<Response>) => {
    const answer = await res;
    expect(answer.status).toBe(400);
    return ((await answer.json()) as { error: { message: string } }).error.message;
  };

  it('is a 400 saying to pass ?site=<site id> to the holder of a privacy token', async () => {
    // Before, 401 "send Authorization: Bearer …", though the token was right.
    expect(await badRequest(send('GET', personPath(a, '?scope=edge'), DEMO_TOKEN, twoSites))).toContain(
      'pass ?site=demo',
    );
    expect(await badRequest(send('DELETE', personPath(a, ''), DEMO_TOKEN, twoSites))).toContain(
      'pass ?site=demo',
    );
    const writeKey = await badRequest(
      send('GET', personPath(a, '?site=pk_demo_attune'), DEMO_TOKEN, twoSites),
    );
    expect(writeKey).toContain('?site is a write key, not a site id');
    expect(writeKey).toContain('pass ?site=demo');
    // Another site's public write key: the answer names the caller's own site only.
    const othersKey = await badRequest(
      send('GET', personPath(a, '?site=pk_other_attune'), DEMO_TOKEN, twoSites),
    );
    expect(othersKey).toContain('write key, not a site id');
    expect(othersKey).not.toContain('other');
  });

  it('is a 400 naming the mistake to the admin', async () => {
    expect(await badRequest(send('GET', personPath(a, ''), 'test-admin-token', twoSites))).toContain(
      'several sites are configured: pass ?site=<site id>',
    );
    expect(
      await badRequest(send('GET', personPath(a, '?site=pk_other_attune'), 'test-admin-token', twoSites)),
    ).toBe("?site is a write key, not a site id (site other's): pass ?site=<site id>");
    expect(
      await badRequest(send('GET', personPath(a, '?site=nope'), 'test-admin-token', twoSites)),
    ).toContain('unknown site');
  });

  it('tells any other caller nothing about which sites exist: the same 401 whatever ?site says', async () => {
    const answers = [];
    for (const [query, token] of [
      ['', undefined],
      ['', 'wrong'],
      ['?site=demo', 'wrong'],
      ['?site=nope', 'wrong'],
      ['?site=pk_demo_attune', 'wrong'],
      // A privacy token names its own site only: another site's id and a made-up one look alike.
      ['?site=other', DEMO_TOKEN],
      ['?site=nope', DEMO_TOKEN],
    ] as const) {
      answers.push(await unauthorized(send('GET', personPath(a, query), token, twoSites)));
    }
    expect(new Set(answers.map((answer) => JSON.stringify(answer))).size).toBe(1);
    expect(answers[0]?.error.message).toContain('?site=<site id>');
  });
});
