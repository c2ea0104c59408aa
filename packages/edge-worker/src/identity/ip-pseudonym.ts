/**
 * The pseudonym of a client address, what the per-IP rate limit keys its buckets by: an
 * HMAC of the address under a salt that rotates daily, so no address is stored. The salt's
 * secret must be one nobody outside can guess: IPv4 has 2^32 addresses, so whoever knows
 * the salt recovers any address from its pseudonym by trying them all.
 */
import { MIN_ADMIN_TOKEN_CHARS } from '../admin/auth.ts';
import { saltDay } from '../enrich/index.ts';
import { logOnce } from '../observability/index.ts';
import type { Site } from '../sites/index.ts';
import { hmacHex, randomHex } from './crypto.ts';
import { MIN_IDENTITY_SECRET_CHARS } from './index.ts';

/** This isolate's own salt secret, made at first use (Workers refuse randomness at start-up). */
let isolateSecret: string | undefined;

/**
 * The HMAC key of `site`'s pseudonyms on `day`. The site's identity secret when it is long
 * enough to be secret, as before (a well-configured site's buckets carry over). A shorter one
 * (unset, or a placeholder such as the example file's `change-me`, which is published) is
 * never the only secret: then ADMIN_TOKEN, when long, which keeps the limit exact across
 * isolates and is held by no other system (HOOK_SECRET and DIRECTUS_TOKEN are in Directus's
 * environment too), with the site's id so two such sites' pseudonyms of an address differ.
 * When ADMIN_TOKEN is short too, nothing configured is secret: a random salt of this
 * isolate. Its cost: each isolate has its own bucket for an address, so the site's per-IP
 * limit is counted per isolate (an address may exceed it by the number of isolates serving
 * it) until the identity secret is fixed; the per-browser limit is unchanged.
 */
function saltKey(env: Env, site: Site, day: string): string {
  if (site.identitySecret.length >= MIN_IDENTITY_SECRET_CHARS) return `${site.identitySecret}:ip-salt:${day}`;
  const adminToken = env.ADMIN_TOKEN ?? '';
  if (adminToken.length >= MIN_ADMIN_TOKEN_CHARS) {
    reportWeakSalt(site, 'ADMIN_TOKEN (the per-IP limit works as before)');
    return `${adminToken}:ip-salt:${site.id}:${day}`;
  }
  reportWeakSalt(
    site,
    "a random salt of each isolate, as ADMIN_TOKEN is short too (the site's per-IP limit is counted per isolate)",
  );
  isolateSecret ??= randomHex(32);
  return `${isolateSecret}:ip-salt:${site.id}:${day}`;
}

function reportWeakSalt(site: Site, instead: string): void {
  // Keyed by the site and the fallback, never by a secret's value: the key is not logged,
  // but neither is anything else here that could be.
  logOnce(
    `ip-salt:${site.id}:${instead}`,
    'error',
    `site identitySecret is shorter than ${MIN_IDENTITY_SECRET_CHARS} characters, or not the site's own: its IP pseudonyms are salted with ${instead} instead, since anyone guessing a placeholder, or holding the secret elsewhere, could recover addresses from them (set a long random identitySecret of the site's own)`,
    { siteId: site.id },
  );
}

/** The pseudonym (hex) of `address` (already reduced to what is limited, see rateLimitAddress) for `site` today. */
export function ipPseudonym(
  env: Env,
  site: Site,
  address: string,
  now: number = Date.now(),
): Promise<string> {
  return hmacHex(saltKey(env, site, saltDay(now)), address);
}
