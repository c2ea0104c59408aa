/**
 * Rate limiting per client. Per IP: a token bucket in the IP's RateLimiterDO (the IP is
 * hashed with a salt that rotates daily, so no IP is ever stored), whose tokens each
 * isolate leases in small blocks and spends locally — so the hot path rarely calls it,
 * and an isolate can overshoot by at most one unspent block. Requests arriving together
 * share one lease call per address and isolate. A refusal stands in the
 * isolate until the time it named, so a flood over the limit does not call the object once
 * per request either. Per anonymousId: a bucket in the browser's own ProfileDO, checked in
 * the same call that applies the events. The per-IP bucket is one per site and address,
 * shared by every browser-facing route (collect, decide, the edge proxy's page decisions).
 */
import { waitUntil } from 'cloudflare:workers';
import { withinBudget } from '../budget/index.ts';
import { ipPseudonym } from '../identity/ip-pseudonym.ts';
import { log } from '../observability/index.ts';
import type { RateLimitSettings, Site } from '../sites/index.ts';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Leased tokens are spent within this time or forgotten (they must not pile up). */
const LEASE_MS = 1000;
const MAX_LEASE = 20;
const leases = new Map<string, { tokens: number; until: number }>();

/**
 * The address a client is limited by: an IPv4 address as is, an IPv6 address by its /64
 * (one subscriber's network: every host in it may pick any interface id, so limiting the
 * full address would let one client rotate through 2^64 fresh buckets), an IPv4-mapped
 * IPv6 address as its IPv4 address. Anything unparsable is used as given.
 */
export function rateLimitAddress(ip: string): string {
  if (!ip.includes(':')) return ip;
  const text = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (mapped?.[1] !== undefined) return mapped[1];
  const halves = text.split('::');
  if (halves.length > 2) return ip;
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return ip;
  const all = [...head, ...Array.from({ length: missing }, () => '0'), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return ip;
  return `${all
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The pseudonymous per-visitor key of an IP address for today (its salt: identity/ip-pseudonym.ts). */
export async function ipKey(env: Env, site: Site, ip: string, now: number = Date.now()): Promise<string> {
  const hash = await ipPseudonym(env, site, rateLimitAddress(ip), now);
  return `ip:${site.id}:${hash.slice(0, 32)}`;
}

/** An isolate's refusal of a bucket: requests needing at least `need` tokens are refused until `until` (epoch ms). */
const refusals = new Map<string, { need: number; until: number }>();

/** The address a request comes from, as Cloudflare gives it (`unknown` without one: tests, local tools). */
export function clientAddress(headers: Headers): string {
  return headers.get('cf-connecting-ip') ?? 'unknown';
}

/**
 * The per-IP limit's verdict on a request costing `cost` tokens: `known` when this isolate
 * can answer alone (its lease holds enough, or a refusal still stands), else `pending`, the
 * bucket's answer, which a caller that must not wait for it in turn (decide) awaits
 * alongside its own reads. A request costs one token per browser it carries events of: each
 * browser is a Durable Object the request writes, so a batch naming a hundred made-up
 * browsers must not cost what one page's batch does. The cost is capped at the burst, so
 * any batch can pass.
 */
export async function ipLimitVerdict(
  env: Env,
  site: Site,
  ip: string,
  cost = 1,
): Promise<{ known: RateDecision } | { pending: Promise<RateDecision> }> {
  const now = Date.now();
  const key = await ipKey(env, site, ip, now);
  const limits = site.settings.rateLimit;
  const need = Math.max(1, Math.min(Math.ceil(cost), Math.floor(limits.ipBurst)));
  // Keyed with the limits too: a site whose limits were raised is not held to a refusal
  // made under the old ones.
  const refusalKey = `${key}:${limits.ipPerSecond}:${limits.ipBurst}`;
  const known = answeredHere(key, refusalKey, need, now);
  return known !== undefined ? { known } : { pending: leaseFromBucket(env, key, refusalKey, need, limits) };
}

/**
 * This isolate's answer for a request needing `need` tokens, without the bucket: taken from
 * its lease when that holds enough (spent here), refused while a refusal for as much stands;
 * undefined when only the bucket can tell.
 */
function answeredHere(key: string, refusalKey: string, need: number, now: number): RateDecision | undefined {
  const lease = leases.get(key);
  if (lease !== undefined && lease.until > now && lease.tokens >= need) {
    lease.tokens -= need;
    return { allowed: true };
  }
  const refused = refusals.get(refusalKey);
  if (refused !== undefined && refused.until > now && need >= refused.need)
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((refused.until - now) / 1000)) };
  return undefined;
}

/** Takes `cost` tokens from the IP's bucket (from this isolate's lease when it holds enough). */
export async function checkIpLimit(env: Env, site: Site, ip: string, cost = 1): Promise<RateDecision> {
  try {
    const verdict = await ipLimitVerdict(env, site, ip, cost);
    return 'known' in verdict ? verdict.known : await verdict.pending;
  } catch (e) {
    // A limiter that fails (its object overloaded or unreachable) allows, as decide's does
    // (underIpLimit): the per-browser limit still holds. Before, the collect answered 500.
    log('warn', 'rate_limit.unavailable', { error: e instanceof Error ? e.name : 'unknown' });
    return { allowed: true };
  }
}

/**
 * Runs `work` (a decision's reads) under the per-IP limit without making it wait for the
 * bucket: not at all when this isolate already knows the address is over its limit, else
 * alongside the bucket's answer, which is waited for at most `budgetMs` (a limiter that is
 * slow or failing allows, as one that forgot its buckets does). Most requests of a visitor
 * find no lease (it lasts a second; a page asks a few times per view), so waiting for the
 * bucket first would add a Durable Object round trip to most answers.
 */
export async function underIpLimit<T>(
  env: Env,
  site: Site,
  ip: string,
  budgetMs: number,
  work: () => Promise<T>,
): Promise<{ allowed: true; value: T } | { allowed: false; retryAfterSeconds: number }> {
  const verdict = await ipLimitVerdict(env, site, ip).catch((): { known: RateDecision } => ({
    known: { allowed: true },
  }));
  if ('known' in verdict && !verdict.known.allowed) return verdict.known;
  const [rate, value] = await Promise.all([
    'known' in verdict
      ? verdict.known
      : withinBudget<RateDecision>(verdict.pending, budgetMs, { allowed: true }),
    work(),
  ]);
  return rate.allowed ? { allowed: true, value } : rate;
}

/** How long a request waits on another's lease call before making its own. */
const JOIN_WAIT_MS = 1000;

/** The lease call under way per bucket key, and what the requests waiting on it need in all. */
const inflight = new Map<string, { call: Promise<unknown>; waiting: number }>();

async function leaseFromBucket(
  env: Env,
  key: string,
  refusalKey: string,
  need: number,
  limits: RateLimitSettings,
): Promise<RateDecision> {
  // Requests that arrive together wait for the one lease call under way and spend from its
  // block, one call at a time per address and isolate. Each leasing its own block instead
  // took tokens from the bucket that nobody spent (they lapse with the lease), so an address
  // (a NAT, an office) was limited far below its burst, and every isolate after it too.
  let behind = 0;
  for (let pending = inflight.get(key); pending !== undefined; pending = inflight.get(key)) {
    pending.waiting += need;
    const settled = await withinBudget(
      pending.call.then(
        () => true,
        () => true,
      ),
      JOIN_WAIT_MS,
      false,
    );
    pending.waiting -= need;
    if (!settled) {
      // Stuck (a call never settles once the runtime cancels its I/O): not waited on again.
      if (inflight.get(key) === pending) inflight.delete(key);
      break;
    }
    // Those still to wake from that call found its block spent too: the next one is for them.
    behind = pending.waiting;
    const known = answeredHere(key, refusalKey, need, Date.now());
    if (known !== undefined) return known;
  }
  const entry = { call: callBucket(env, key, refusalKey, need, behind, limits), waiting: 0 };
  inflight.set(key, entry);
  // Others wait on this call. The runtime cancels a request's unfinished I/O when it ends
  // (a page answered without waiting for its bucket, see underIpLimit) unless it was handed
  // to waitUntil, and then the call would never settle for them.
  waitUntil(entry.call.catch(() => undefined));
  try {
    return await entry.call;
  } finally {
    if (inflight.get(key) === entry) inflight.delete(key);
  }
}

async function callBucket(
  env: Env,
  key: string,
  refusalKey: string,
  need: number,
  behind: number,
  limits: RateLimitSettings,
): Promise<RateDecision> {
  const now = Date.now();
  const lease = leases.get(key);
  const leased = lease && lease.until > now ? lease.tokens : 0;
  // A tenth of the burst per lease (small limits stay exact, large ones cost few calls), or
  // what the requests left waiting by the last call need besides, up to the burst. The
  // bucket grants nothing unless it holds what this request still lacks (its `min`): tokens
  // taken for a request that is refused anyway would be lost to the address.
  const block = Math.max(need, Math.min(MAX_LEASE, Math.floor(limits.ipBurst / 10)));
  const want = Math.max(block, Math.min(need + behind, Math.floor(limits.ipBurst)));
  const result = await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key)).lease(
    { key, perSecond: limits.ipPerSecond, burst: limits.ipBurst },
    want,
    need - leased,
  );
  if (result.granted === 0) {
    // Until the time the answer names, the bucket cannot pay this much (other isolates only
    // take from it): the isolate refuses such requests itself meanwhile.
    if (refusals.size > 10_000) refusals.clear();
    refusals.set(refusalKey, { need, until: now + result.retryAfterSeconds * 1000 });
    return { allowed: false, retryAfterSeconds: result.retryAfterSeconds };
  }
  refusals.delete(refusalKey);
  if (leases.size > 10_000) leases.clear();
  // Add the block to what the lease still held (requests spent from it meanwhile, each
  // finding enough); what this request lacks stays owed (a negative lease), paid from the
  // next block.
  const at = Date.now();
  const current = leases.get(key);
  const left = current !== undefined && current.until > at ? current.tokens : 0;
  leases.set(key, { tokens: left + result.granted - need, until: at + LEASE_MS });
  return { allowed: true };
}
