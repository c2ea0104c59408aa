/**
 * The people routes (GET and DELETE /v1/people/:id) and the admin token, as a caller meets
 * them: a weak ADMIN_TOKEN opens nothing.
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
