/**
 * Rate limiting per client: a token bucket per IP (hashed with a salt that rotates
 * daily, so no IP is ever stored) and per anonymousId, each in its own RateLimiterDO.
 */
import { saltDay } from '../enrich/index.ts';
import { hmacHex } from '../identity/index.ts';
import type { Site } from '../sites/index.ts';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** The pseudonymous per-visitor key of an IP address for today. */
export async function ipKey(site: Site, ip: string, now: number = Date.now()): Promise<string> {
  const hash = await hmacHex(`${site.identitySecret}:ip-salt:${saltDay(now)}`, ip);
  return `ip:${site.id}:${hash.slice(0, 32)}`;
}

/** Takes one token from the IP's bucket and from each anonymousId's bucket (at most 10 ids). */
export async function checkRateLimits(
  env: Env,
  site: Site,
  ip: string,
  anonymousIds: readonly string[],
): Promise<RateDecision> {
  const limits = site.settings.rateLimit;
  const checks = [
    { key: await ipKey(site, ip), perSecond: limits.ipPerSecond, burst: limits.ipBurst },
    ...anonymousIds.slice(0, 10).map((id) => ({
      key: `anon:${site.id}:${id}`,
      perSecond: limits.anonymousPerSecond,
      burst: limits.anonymousBurst,
    })),
  ];
  const results = await Promise.all(
    checks.map((c) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(c.key)).take(1, c.perSecond, c.burst)),
  );
  let retry = 0;
  for (const r of results) if (!r.allowed) retry = Math.max(retry, r.retryAfterSeconds);
  return retry > 0 ? { allowed: false, retryAfterSeconds: retry } : { allowed: true };
}
