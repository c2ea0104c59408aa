/**
 * IP pseudonyms: a site whose identity secret is a placeholder does not hand out its
 * pseudonyms' salt to whoever guesses the placeholder; a well-configured site keeps its own.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { saltDay } from '../enrich/index.ts';
import { anonId, collect, makeEvent, ORIGIN, SERVER_KEY, SITE, WRITE_KEY } from '../ingest/test-support.ts';
import { getSiteById } from '../sites/index.ts';
import { hmacHex } from './crypto.ts';
import { ipPseudonym } from './ip-pseudonym.ts';

/** `env` serving the demo site with `identitySecret`, a tight per-IP limit, and `adminToken`. */
function siteWith(identitySecret: string, adminToken: string): Env {
  return {
    ...env,
    ADMIN_TOKEN: adminToken,
    ATTUNE_SITES: JSON.stringify([
      {
        id: SITE,
        writeKey: WRITE_KEY,
        allowedOrigins: [ORIGIN],
        settings: { rateLimit: { ipPerSecond: 0.01, ipBurst: 2 } },
      },
    ]),
    ATTUNE_SITE_SECRETS: JSON.stringify({ [SITE]: { identitySecret, serverKey: SERVER_KEY } }),
  } as unknown as Env;
}

/** The pseudonym an outsider computes for `address` from a guessed identity secret (the salt before). */
async function guessed(secret: string, address: string): Promise<string> {
  return hmacHex(`${secret}:ip-salt:${saltDay()}`, address);
}

async function siteOf(bindings: Env) {
  const site = await getSiteById(bindings, SITE);
  if (site === undefined) throw new Error('test site not configured');
  return site;
}

describe('IP pseudonyms', () => {
  it("keep a long identity secret as their salt (a well-configured site's buckets carry over)", async () => {
    const bindings = siteWith('a-long-random-identity-secret', 'a-long-random-admin-token');
    const site = await siteOf(bindings);
    expect(await ipPseudonym(bindings, site, '203.0.113.9')).toBe(
      await guessed('a-long-random-identity-secret', '203.0.113.9'),
    );
  });

  it('are not salted by a placeholder identity secret alone: ADMIN_TOKEN salts them when long', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const bindings = siteWith('change-me', 'a-long-random-admin-token');
      const site = await siteOf(bindings);
      const pseudonym = await ipPseudonym(bindings, site, '203.0.113.10');
      // Before, exactly this: anyone who guessed `change-me` could try all 2^32 IPv4 addresses.
      expect(pseudonym).not.toBe(await guessed('change-me', '203.0.113.10'));
      expect(pseudonym).toBe(await ipPseudonym(bindings, site, '203.0.113.10'));
      // Salted by the Worker's secret: another ADMIN_TOKEN, another pseudonym.
      const other = siteWith('change-me', 'another-long-admin-token');
      expect(await ipPseudonym(other, await siteOf(other), '203.0.113.10')).not.toBe(pseudonym);
    } finally {
      errors.mockRestore();
    }
  });

  it('fall back to a random salt of the isolate when ADMIN_TOKEN is short too, said once, with no secret or address', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const bindings = siteWith('change-me', 'change-me');
      const site = await siteOf(bindings);
      const pseudonym = await ipPseudonym(bindings, site, '203.0.113.11');
      expect(pseudonym).not.toBe(await guessed('change-me', '203.0.113.11'));
      expect(await ipPseudonym(bindings, site, '203.0.113.11')).toBe(pseudonym);
      await ipPseudonym(bindings, site, '203.0.113.12');
      const lines = errors.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('IP pseudonyms'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('a random salt of each isolate');
      expect(lines[0]).toContain(`"siteId":"${SITE}"`);
      for (const leaked of ['change-me', '203.0.113.1']) expect(lines[0]).not.toContain(leaked);
    } finally {
      errors.mockRestore();
    }
  });

  for (const [label, adminToken] of [
    ['a long ADMIN_TOKEN', 'a-long-random-admin-token'],
    ['a random salt of the isolate', 'change-me'],
  ] as const) {
    it(`of a site with a placeholder identity secret still limit an address (${label}), in a bucket nobody can name from the placeholder`, async () => {
      const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        const bindings = siteWith('change-me', adminToken);
        const ip = label.startsWith('a long') ? '198.51.100.20' : '198.51.100.21';
        const headers = { 'cf-connecting-ip': ip };
        const statuses: number[] = [];
        for (let i = 0; i < 3; i++)
          statuses.push((await collect([makeEvent(anonId())], { env: bindings, headers })).status);
        expect(statuses).toEqual([200, 200, 429]);
        // The bucket the placeholder names is untouched: before, it was this address's, emptied.
        const key = `ip:${SITE}:${(await guessed('change-me', ip)).slice(0, 32)}`;
        const bucket = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key));
        const lease = await bucket.lease({ key, perSecond: 0.01, burst: 2 }, 2);
        expect(lease.granted).toBe(2);
      } finally {
        errors.mockRestore();
      }
    });
  }
});
