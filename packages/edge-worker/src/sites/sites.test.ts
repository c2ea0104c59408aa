/**
 * The site directory built from configuration: mistakes an operator can make in
 * ATTUNE_SITES and ATTUNE_SITE_SECRETS are refused with a log line that names them, never
 * applied silently, and one site's mistake takes no other site down.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { siteByServerKey } from '../admin/auth.ts';
import { signUserId, verifyUserId } from '../identity/index.ts';
import { ALL, anonId, call, collect, makeEvent, productView } from '../ingest/test-support.ts';
import { getSiteById, getSiteByWriteKey, isOriginAllowed, listSites, ownsUnsitedRows } from './index.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const secrets = JSON.stringify({
  one: { identitySecret: 'identity-secret-one', serverKey: 'sk_server_key_one' },
  two: { identitySecret: 'identity-secret-two', serverKey: 'sk_server_key_two' },
});

function configured(sites: unknown[], siteSecrets: string = secrets): Env {
  return { ...env, ATTUNE_SITES: JSON.stringify(sites), ATTUNE_SITE_SECRETS: siteSecrets } as unknown as Env;
}

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

function logged(spy: { mock: { calls: unknown[][] } }): string {
  return spy.mock.calls.map((call) => String(call[0])).join('\n');
}

describe('site configuration', () => {
  it('a write key given to two sites stays with the first; the second is skipped and logged', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([
      { id: 'one', writeKey: 'pk_shared' },
      { id: 'two', writeKey: 'pk_shared' },
    ]);
    expect((await getSiteByWriteKey(config, 'pk_shared'))?.id).toBe('one');
    expect(await getSiteById(config, 'two')).toBeUndefined();
    expect(logged(errors)).toContain('site writeKey is already taken by an earlier site; skipped');
  });

  it('a site id with a separator of the keys it is joined into (/ or :) is skipped and logged: it would share keys with another site', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    // A person's object is named `<site>/<person key>` and their Directus row `<site>:<person
    // key>`: beside site `one`, a site `one/anon:x` had its person `anon:y` reachable by any
    // browser of `one` sending the anonymous id `x/anon:y` (the same Durable Object).
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'one/anon:x', writeKey: 'pk_slash' },
        { id: 'one:anon', writeKey: 'pk_colon' },
      ],
      JSON.stringify({
        one: { identitySecret: 'identity-secret-one', serverKey: 'sk_server_key_one' },
        'one/anon:x': { identitySecret: 'identity-secret-slash', serverKey: 'sk_server_key_slash' },
        'one:anon': { identitySecret: 'identity-secret-colon', serverKey: 'sk_server_key_colon' },
      }),
    );
    expect((await getSiteById(config, 'one'))?.writeKey).toBe('pk_one');
    expect(await getSiteByWriteKey(config, 'pk_slash')).toBeUndefined();
    expect(await getSiteByWriteKey(config, 'pk_colon')).toBeUndefined();
    expect(logged(errors)).toContain('ATTUNE_SITES[1].id');
  });

  it('rows naming no site (an order written without site_id) are the sole site’s, and no one’s with several', async () => {
    const sole = configured([{ id: 'one', writeKey: 'pk_one' }]);
    expect(await ownsUnsitedRows(sole, 'one')).toBe(true);
    expect(await ownsUnsitedRows(sole, 'two')).toBe(false);
    const both = configured([
      { id: 'one', writeKey: 'pk_one' },
      { id: 'two', writeKey: 'pk_two' },
    ]);
    expect(await ownsUnsitedRows(both, 'one')).toBe(false);
  });

  it('a burst below one request falls back to the defaults, with a log line naming it', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([{ id: 'one', writeKey: 'pk_one', settings: { rateLimit: { ipBurst: 0.5 } } }]);
    const site = await getSiteById(config, 'one');
    expect(site?.settings.rateLimit.ipBurst).toBeGreaterThanOrEqual(1);
    expect(logged(errors)).toContain('settings.rateLimit.ipBurst');
  });

  it('settings.identity.signatures: plain when identity is unset; a misspelt value or key is logged and read as expiring, the stricter form', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two', settings: { identity: { signatures: 'expring' } } },
        { id: 'three', writeKey: 'pk_three', settings: { identity: { signature: 'expiring' } } },
        { id: 'four', writeKey: 'pk_four', settings: { identity: 'expiring' } },
        { id: 'five', writeKey: 'pk_five', settings: { identity: { signatures: 'plain' } } },
      ],
      JSON.stringify(
        Object.fromEntries(
          ['one', 'two', 'three', 'four', 'five'].map((id) => [
            id,
            { identitySecret: `identity-secret-${id}`, serverKey: `sk_server_key_${id}` },
          ]),
        ),
      ),
    );
    expect((await getSiteById(config, 'one'))?.signatures).toBe('plain');
    expect((await getSiteById(config, 'two'))?.signatures).toBe('expiring');
    expect((await getSiteById(config, 'three'))?.signatures).toBe('expiring');
    expect((await getSiteById(config, 'four'))?.signatures).toBe('expiring');
    expect((await getSiteById(config, 'five'))?.signatures).toBe('plain');
    expect(errors.mock.calls.filter((c) => String(c[0]).includes('identity.signatures'))).toHaveLength(3);
    expect(logged(errors)).toContain(
      'site settings.identity.signatures must be plain, expiring or bound; taken as expiring',
    );
    expect(logged(errors)).not.toContain('expring');
  });

  it('a server key given to two sites stays with the first; the second is skipped and logged', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two' },
      ],
      JSON.stringify({
        one: { identitySecret: 'identity-secret-one', serverKey: 'sk_server_key_same' },
        two: { identitySecret: 'identity-secret-two', serverKey: 'sk_server_key_same' },
      }),
    );
    // Server events for site one must never land in site two.
    expect((await siteByServerKey(config, basic('sk_server_key_same')))?.id).toBe('one');
    expect(await getSiteById(config, 'two')).toBeUndefined();
    expect(logged(errors)).toContain('site serverKey is already taken by an earlier site; skipped');
  });

  it('a server key equal to a (public) write key is refused, so nobody can send trusted events with it', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two_public_write_key' },
      ],
      JSON.stringify({
        one: { identitySecret: 'identity-secret-one', serverKey: 'pk_two_public_write_key' },
        two: { identitySecret: 'identity-secret-two', serverKey: 'sk_server_key_two' },
      }),
    );
    expect(await siteByServerKey(config, basic('pk_two_public_write_key'))).toBeUndefined();
    expect(await getSiteById(config, 'one')).toBeUndefined();
    expect((await getSiteById(config, 'two'))?.serverKey).toBe('sk_server_key_two');
    expect(logged(errors)).toContain('site serverKey equals a write key, which is public; skipped');
  });

  it('allowed origins match the Origin header browsers send, however the operator wrote them', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([
      {
        id: 'one',
        writeKey: 'pk_one',
        allowedOrigins: [
          'https://shop.example/',
          'HTTPS://WWW.Shop.Example:443',
          'https://app.example/checkout',
        ],
      },
    ]);
    const site = await getSiteById(config, 'one');
    if (!site) throw new Error('site one was skipped');
    expect(isOriginAllowed(site, 'https://shop.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://www.shop.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://app.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://evil.example')).toBe(false);
    // Only the entry with a path is worth a word: the others were plainly meant as written.
    expect(logged(errors)).toContain(
      'entry https://app.example/checkout is not an origin; https://app.example is used',
    );
    expect(logged(errors)).not.toContain('shop.example');
  });
});

/** The error lines logged while `work` runs. */
async function errorsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await work();
    return errors.mock.calls.map((call) => String(call[0]));
  } finally {
    errors.mockRestore();
  }
}

describe('configuration that cannot be read says what is wrong, once', () => {
  it('ATTUNE_SITES that is not JSON (a trailing comma) is logged, naming the variable and the parse failure', async () => {
    const config = {
      ...env,
      ATTUNE_SITES: '[{"id":"one","writeKey":"pk_one"},]',
      ATTUNE_SITE_SECRETS: secrets,
    } as unknown as Env;
    const lines = await errorsDuring(async () => {
      for (let i = 0; i < 3; i++) expect(await getSiteByWriteKey(config, 'pk_one')).toBeUndefined();
    });
    // Before, no line at all: every request was a 401 "unknown write key" and nothing said why.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('ATTUNE_SITES is not valid JSON (');
  });

  it('ATTUNE_SITE_SECRETS that is not JSON is logged without quoting it (it holds secrets)', async () => {
    const config = configured(
      [{ id: 'one', writeKey: 'pk_one' }],
      '{"one":{"identitySecret":"identity-secret-one","serverKey":"sk_server_key_one",}}',
    );
    const lines = await errorsDuring(async () => {
      expect(await listSites(config)).toEqual([]);
      expect(await listSites(config)).toEqual([]);
    });
    expect(lines).toHaveLength(1);
    // Before: "site has no secrets; skipped", as if they had been left out.
    expect(lines[0]).toMatch(/ATTUNE_SITE_SECRETS is not valid JSON \(a syntax error at position \d+\)/);
    expect(lines[0]).not.toContain('identity-secret-one');
    expect(lines[0]).not.toContain('sk_server_key_one');
  });

  it("one site's secrets without a serverKey take only that site down, with the field and site named", async () => {
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two' },
      ],
      JSON.stringify({
        one: { identitySecret: 'identity-secret-one', serverKey: 'sk_server_key_one' },
        two: { identitySecret: 'identity-secret-two' },
      }),
    );
    const lines = await errorsDuring(async () => {
      // Before, both were gone, with only "site configuration unreadable".
      expect((await getSiteByWriteKey(config, 'pk_one'))?.id).toBe('one');
      expect(await getSiteByWriteKey(config, 'pk_two')).toBeUndefined();
    });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      siteId: 'two',
      msg: expect.stringMatching(/^ATTUNE_SITE_SECRETS\.two\.serverKey: .*expected string.*; site skipped$/),
    });
  });

  it('one invalid ATTUNE_SITES entry is skipped with the field named; the others are served', async () => {
    const config = configured([
      { id: 'one', writeKey: 'pk_one' },
      { id: 'two', writeKey: 'pk_two', allowedOrigins: 'https://two.example' },
    ]);
    const lines = await errorsDuring(async () => {
      expect((await getSiteByWriteKey(config, 'pk_one'))?.id).toBe('one');
      expect(await getSiteByWriteKey(config, 'pk_two')).toBeUndefined();
    });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      siteId: 'two',
      msg: expect.stringMatching(/^ATTUNE_SITES\[1\]\.allowedOrigins: .*; site skipped$/),
    });
  });

  it('secrets filed under an id no site has are logged (a typo would leave the site without them)', async () => {
    const config = configured(
      [{ id: 'one', writeKey: 'pk_one' }],
      JSON.stringify({ onr: { identitySecret: 'identity-secret-one', serverKey: 'sk_server_key_one' } }),
    );
    const lines = await errorsDuring(() => getSiteByWriteKey(config, 'pk_one'));
    expect(lines.join('\n')).toContain(
      'ATTUNE_SITE_SECRETS has secrets for a site ATTUNE_SITES does not list',
    );
    expect(lines.join('\n')).toContain('"siteId":"onr"');
    expect(lines.join('\n')).toContain('site has no secrets in ATTUNE_SITE_SECRETS; skipped');
  });
});

describe('secrets too short to be secret', () => {
  /** The demo site (test-support's write key and origin) with the example file's placeholders. */
  const placeholders = {
    ...env,
    ATTUNE_SITE_SECRETS: JSON.stringify({ demo: { identitySecret: 'change-me', serverKey: 'sk_change_me' } }),
  } as unknown as Env;

  it('a short identity secret verifies no signature', async () => {
    const signature = await signUserId('change-me', 'user-1');
    expect(await verifyUserId('change-me', 'user-1', signature)).toBe(false);
    const long = 'a-long-identity-secret';
    expect(await verifyUserId(long, 'user-1', await signUserId(long, 'user-1'))).toBe(true);
  });

  it("keep the site's anonymous traffic, but take no signed user id and no server producer; logged once, naming site and secret", async () => {
    const lines = await errorsDuring(async () => {
      const a = anonId();
      const forged = makeEvent(a, 'page.viewed', {
        userId: 'someone-else',
        userIdSignature: await signUserId('change-me', 'someone-else'),
      });
      const res = await collect([productView(a, 'p1', 'shoes'), forged], { env: placeholders });
      // Before, 200: anyone who guessed the placeholder could sign any user id.
      expect(res.status).toBe(207);
      expect(await res.json()).toMatchObject({
        accepted: 1,
        rejected: [{ index: 1, errors: [{ path: 'batch[1].userIdSignature' }] }],
      });
      // Before, 200: the placeholder server key sent trusted events with unsigned user ids.
      const server = await call(
        JSON.stringify({
          userId: 'someone-else',
          event: 'Product Added',
          properties: { product_id: 'p9', category: 'Games' },
          context: { consent: ALL },
        }),
        {
          path: '/v1/track',
          origin: null,
          env: placeholders,
          headers: { authorization: `Basic ${btoa('sk_change_me:')}`, 'content-type': 'application/json' },
        },
      );
      expect(server.status).toBe(401);
      expect((await getSiteById(placeholders, 'demo'))?.serverKey).toBeUndefined();
    });
    // (Once per reading of the configuration: the test's Durable Objects read the suite's own.)
    const weak = [...new Set(lines.filter((line) => line.includes('shorter than 16 characters')))];
    expect(weak.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ siteId: 'demo', msg: expect.stringContaining('site serverKey is shorter') }),
      expect.objectContaining({
        siteId: 'demo',
        msg: expect.stringContaining('site identitySecret is shorter'),
      }),
      // The per-IP limit's pseudonyms are salted with something else (identity/ip-pseudonym.ts).
      expect.objectContaining({
        siteId: 'demo',
        msg: expect.stringContaining('its IP pseudonyms are salted with ADMIN_TOKEN'),
      }),
    ]);
    expect(lines.join('\n')).not.toContain('change-me');
    expect(lines.join('\n')).not.toContain('change_me');
  });

  it('are logged once per reading of the configuration, not once per request', async () => {
    const config = configured(
      [{ id: 'one', writeKey: 'pk_one' }],
      JSON.stringify({ one: { identitySecret: 'short-secret', serverKey: 'short-key' } }),
    );
    const lines = await errorsDuring(async () => {
      for (let i = 0; i < 3; i++) {
        expect((await getSiteByWriteKey(config, 'pk_one'))?.id).toBe('one');
        expect(await siteByServerKey(config, basic('short-key'))).toBeUndefined();
      }
    });
    expect(lines).toHaveLength(2);
  });

  it('a short server key shared by two sites takes neither down (it authenticates nothing)', async () => {
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two' },
      ],
      JSON.stringify({
        one: { identitySecret: 'identity-secret-one', serverKey: 'sk_change_me' },
        two: { identitySecret: 'identity-secret-two', serverKey: 'sk_change_me' },
      }),
    );
    await errorsDuring(async () => {
      expect((await getSiteById(config, 'two'))?.id).toBe('two');
      expect(await siteByServerKey(config, basic('sk_change_me'))).toBeUndefined();
    });
  });
});

describe("an identity secret that is not the site's own", () => {
  it('shared with another site, public, a server key or a Worker secret: signs no one in, the site is still served, and the log says why without the value', async () => {
    const config = {
      ...configured(
        [
          { id: 'one', writeKey: 'pk_one' },
          { id: 'two', writeKey: 'pk_two' },
          { id: 'three', writeKey: 'pk_three_public_write_key' },
          { id: 'four', writeKey: 'pk_four' },
          { id: 'five', writeKey: 'pk_five' },
          { id: 'six', writeKey: 'pk_six' },
        ],
        JSON.stringify({
          one: { identitySecret: 'identity-secret-shared', serverKey: 'sk_server_key_one' },
          two: { identitySecret: 'identity-secret-shared', serverKey: 'sk_server_key_two' },
          three: { identitySecret: 'pk_three_public_write_key', serverKey: 'sk_server_key_three' },
          four: { identitySecret: 'sk_server_key_one', serverKey: 'sk_server_key_four' },
          five: { identitySecret: 'hook-secret-of-the-worker', serverKey: 'sk_server_key_five' },
          six: { identitySecret: 'identity-secret-six', serverKey: 'sk_server_key_six' },
        }),
      ),
      HOOK_SECRET: 'hook-secret-of-the-worker',
    } as unknown as Env;
    const lines = await errorsDuring(async () => {
      for (const id of ['one', 'two', 'three', 'four', 'five']) {
        const site = await getSiteById(config, id);
        // Served (anonymous traffic), but its identity secret verifies nothing.
        expect(site?.id).toBe(id);
        expect(site?.identitySecret).toBe('');
      }
      expect((await getSiteById(config, 'six'))?.identitySecret).toBe('identity-secret-six');
    });
    const refused = lines
      .map((line) => JSON.parse(line) as { msg: string; siteId?: string })
      .filter((line) => line.msg.startsWith('site identitySecret is'));
    expect(refused.map((line) => [line.siteId, line.msg.split(':')[0]])).toEqual([
      ['one', "site identitySecret is another site's identity secret too"],
      ['two', "site identitySecret is another site's identity secret too"],
      ['three', 'site identitySecret is a write key, which is public'],
      ['four', "site identitySecret is a site's server key"],
      [
        'five',
        "site identitySecret is one of the Worker's own secrets (ADMIN_TOKEN, DIRECTUS_TOKEN or HOOK_SECRET)",
      ],
    ]);
    for (const secret of ['identity-secret-shared', 'hook-secret-of-the-worker', 'sk_server_key_one'])
      expect(lines.join('\n')).not.toContain(secret);
  });
});

describe('allowedOrigins entries no browser sends for one site', () => {
  it('"null" is not taken, and logged: any page can send Origin: null (a sandboxed iframe), and read the answers', async () => {
    // The demo site (test-support's write key), allowing its shop and, as an operator testing a
    // page opened from disk might add, "null".
    const config = {
      ...env,
      ATTUNE_SITES: JSON.stringify([
        {
          id: 'demo',
          writeKey: 'pk_demo_attune',
          allowedOrigins: ['http://localhost:3000', 'null', '*', 'shop.example'],
        },
      ]),
    } as unknown as Env;
    const lines = await errorsDuring(async () => {
      const res = await collect([makeEvent(anonId())], { origin: 'null', env: config });
      // Before, 200 with Access-Control-Allow-Origin: null: an attacker's sandboxed iframe
      // sent events in the name of the shop's pages, from its visitors' browsers, and read the answers.
      expect(res.status).toBe(403);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(
        (await collect([makeEvent(anonId())], { origin: 'http://localhost:3000', env: config })).status,
      ).toBe(200);
    });
    const entries = lines
      .map((line) => JSON.parse(line) as { msg: string; siteId?: string })
      .filter((line) => line.msg.startsWith('site allowedOrigins entry'));
    expect(entries.map((line) => line.msg.split(':')[0])).toEqual([
      'site allowedOrigins entry null is not taken',
      'site allowedOrigins entry * is not taken',
      'site allowedOrigins entry shop.example is not taken',
    ]);
    expect(entries.every((line) => line.siteId === 'demo')).toBe(true);
  });
});
