/**
 * A site's privacy token: what a shop's server holds for its "delete my data" and access
 * requests. It reaches that site's people and nothing else: no other site's people, no
 * operator route.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../app.ts';
import { anonId, collect, productView } from '../ingest/test-support.ts';
import { DEMO_PRIVACY_TOKEN, OTHER_PRIVACY_TOKEN, twoSitesEnv } from './test-support.ts';

const SHOP_TOKEN = DEMO_PRIVACY_TOKEN;
const OTHER_TOKEN = OTHER_PRIVACY_TOKEN;

/** The demo site and a second one, each with its own privacy token. */
const twoSites = twoSitesEnv();

/** The two sites with these privacy tokens. */
const sitesWithTokens = twoSitesEnv;

async function send(
  method: string,
  path: string,
  token: string,
  bindings: Env = twoSites,
): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`http://attune.test${path}`, { method, headers: { authorization: `Bearer ${token}` } }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

describe("a site's privacy token", () => {
  it("reaches that site's people only, and no operator route", async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const person = `/v1/people/${encodeURIComponent(`anon:${a}`)}`;
    const own = await send('GET', `${person}?site=demo&scope=edge`, SHOP_TOKEN);
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ siteId: 'demo', personId: `anon:${a}` });
    // Before, a shop held the Worker's ADMIN_TOKEN, which reaches every site's people.
    expect((await send('GET', `${person}?site=demo&scope=edge`, OTHER_TOKEN)).status).toBe(401);
    expect((await send('DELETE', `${person}?site=demo`, OTHER_TOKEN)).status).toBe(401);
    expect((await send('GET', '/v1/admin/stats', SHOP_TOKEN)).status).toBe(401);
    expect(
      (await send('POST', `/v1/admin/replay/${encodeURIComponent(`anon:${a}`)}?site=demo`, SHOP_TOKEN))
        .status,
    ).toBe(401);
    // The operator's admin token still reaches every site.
    expect((await send('GET', `${person}?site=demo&scope=edge`, 'test-admin-token')).status).toBe(200);
    // Its own site's erasure goes through.
    expect((await send('DELETE', `${person}?site=demo`, SHOP_TOKEN)).status).toBe(200);
  });

  it('one site’s bad token is not taken, and takes no site down', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const person = `/v1/people/${encodeURIComponent(`anon:${a}`)}?site=demo&scope=edge`;
    // A placeholder on the other site: before, it failed the whole secrets JSON, and no site was served.
    const short = sitesWithTokens(SHOP_TOKEN, 'change-me');
    expect((await send('GET', person, SHOP_TOKEN, short)).status).toBe(200);
    expect((await send('GET', '/v1/people/anon%3Ax?site=other&scope=edge', 'change-me', short)).status).toBe(
      401,
    );
    // Two sites with one token: neither may use it (each would reach the other's people).
    const shared = sitesWithTokens(SHOP_TOKEN, SHOP_TOKEN);
    expect((await send('GET', person, SHOP_TOKEN, shared)).status).toBe(401);
    // Nor a token that is not a string (a template's null): before, no site was served.
    const unset = {
      ...twoSites,
      ATTUNE_SITE_SECRETS: JSON.stringify({
        demo: {
          identitySecret: 'test-identity-secret',
          serverKey: 'sk_test_server_key',
          privacyToken: SHOP_TOKEN,
        },
        other: {
          identitySecret: 'other-identity-secret',
          serverKey: 'sk_other_server_key',
          privacyToken: null,
        },
      }),
    } as unknown as Env;
    expect((await send('GET', person, SHOP_TOKEN, unset)).status).toBe(200);
    // A token that is another site's identity secret is not taken.
    expect(
      (
        await send(
          'GET',
          person,
          'other-identity-secret',
          sitesWithTokens('other-identity-secret', OTHER_TOKEN),
        )
      ).status,
    ).toBe(401);
    // A token that is a server key is not taken either.
    expect(
      (await send('GET', person, 'sk_other_server_key', sitesWithTokens('sk_other_server_key', OTHER_TOKEN)))
        .status,
    ).toBe(401);
    // Nor one of the Worker's own secrets: a shop would hold the Directus token or the hook
    // secret, or, with the admin token, every site's people and the operator routes.
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (const secret of [env.DIRECTUS_TOKEN, env.HOOK_SECRET]) {
        expect((await send('GET', person, secret, sitesWithTokens(secret, OTHER_TOKEN))).status).toBe(401);
      }
      errors.mockClear();
      await send('GET', person, SHOP_TOKEN, sitesWithTokens(env.ADMIN_TOKEN, OTHER_TOKEN));
      const logged = errors.mock.calls.map((call) => String(call[0])).join('\n');
      expect(logged).toContain("privacyToken is one of the Worker's own secrets");
      expect(logged).not.toContain(env.ADMIN_TOKEN);
    } finally {
      errors.mockRestore();
    }
  });
});
