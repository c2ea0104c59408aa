/**
 * The people routes (GET and DELETE /v1/people/:id) and the admin token, as a caller meets
 * them: a weak ADMIN_TOKEN opens nothing, no answer is stored by a cache, and a Directus
 * outage does not put person keys in the answer.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { anonId, call, collect, productView } from '../ingest/test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const DEMO_TOKEN = 'demo-privacy-token-0123456789';

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
    await noStore(send('GET', personPath(`anon:${a}`, '?site=nope'), 'test-admin-token'), 400);
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
