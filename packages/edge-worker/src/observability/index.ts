/**
 * Observability: structured JSON logs without personal data, outcome counters
 * (accepted, invalid, duplicate, consent_dropped, rate_limited, suppressed, and the messages
 * lost downstream: OUTCOMES) and the W3C `traceparent` carried into queue messages.
 */
import { randomHex } from '../identity/crypto.ts';

export const OUTCOMES = [
  'accepted',
  'invalid',
  'duplicate',
  'consent_dropped',
  'rate_limited',
  'suppressed',
  /** Events whose user id came with an expired signature (identity/index.ts): taken without it through a linked browser, else refused (also counted invalid). */
  'signature_expired',
  /** Messages the queue refused twice, parked at their person's ProfileDO, which sends them again from its alarm. */
  'queue_parked',
  /** Messages lost to downstream: refused by the queue and not parked (or parked and refused for PARKED_KEEP_MS); logged. */
  'queue_failed',
  /** Dead letters Directus refused to keep (src/sync/dead-letters.ts, logged `sync.dead_letter_refused`): those messages are lost. */
  'dead_letter_refused',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Writes one log line as JSON. Callers pass only counts, ids of sites and codes — never people. */
export function log(
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields: Record<string, string | number | boolean> = {},
): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** Keys logOnce has logged in this isolate. */
const loggedOnce = new Set<string>();

/**
 * Logs once per isolate and `key` (a configuration mistake, keyed by the value at fault): any
 * caller can make a request that meets it, so one line, not one per request.
 */
export function logOnce(
  key: string,
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields: Record<string, string | number | boolean> = {},
): void {
  if (loggedOnce.has(key)) return;
  loggedOnce.add(key);
  log(level, msg, fields);
}

/**
 * Says, once per isolate and value, that a setting an operator gave (a var, a site setting)
 * cannot be used and what applies instead: `<name> <value> is not <expected>; <applied>`.
 * A default taken silently (a retention three times longer than set) goes unnoticed.
 */
export function logUnusableSetting(name: string, raw: unknown, expected: string, applied: string): void {
  const shown = (JSON.stringify(raw) ?? String(raw)).slice(0, 64);
  logOnce(`setting:${name}:${shown}`, 'error', `${name} ${shown} is not ${expected}; ${applied}`);
}

/** What numberSetting reads a var by: its range, what applies when it is unusable, and how that is said. */
export interface NumberRange {
  min: number;
  max: number;
  /** What applies when the var is unset or unusable. */
  fallback: number;
  /** Over `max`, `max` applies instead of `fallback` (a cap rather than a refusal). */
  capAtMax?: boolean;
  /** What the var should be, for the log line ("0 to 1000 ms"). */
  expected: string;
  /** What applies, for the log line ("50 ms apply"). */
  applied: (value: number) => string;
}

/**
 * A number from a var: unset, `range.fallback`; a number from `min` to `max`, itself;
 * anything else (text such as "50ms", empty, out of range) the fallback (or the cap), said
 * once per isolate by logUnusableSetting.
 */
export function numberSetting(name: string, raw: unknown, range: NumberRange): number {
  if (raw === undefined) return range.fallback;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (Number.isFinite(value) && value >= range.min && value <= range.max) return value;
  const applied = range.capAtMax && Number.isFinite(value) && value > range.max ? range.max : range.fallback;
  logUnusableSetting(name, raw, range.expected, range.applied(applied));
  return applied;
}

/** Per-route aggregate of answered requests since the last summary line. */
interface RequestTally {
  requests: number;
  totalMs: number;
  maxMs: number;
  byStatus: Record<string, number>;
  stageMs: Record<string, number>;
}

const tallies = new Map<string, RequestTally>();
let lastSummaryAt = 0;
/** Successful requests are summarized in one line per route per isolate at most this often. */
export const REQUEST_SUMMARY_INTERVAL_MS = 1000;

/**
 * Logs one answered request. A failed one (status >= 400) gets its own line at once; a
 * successful one (2xx) is added to a per-route tally that is written as one `<route>.summary`
 * line (requests, statuses, mean and max ms, summed stage ms) at most once a second.
 * Why: under load a line per request costs more CPU than the ingest work it describes
 * (console output is serialized and shipped out of the isolate), and says nothing a
 * summary does not; failures stay individually visible.
 */
export function logRequest(
  route: string,
  status: number,
  ms: number,
  stages: Record<string, number> = {},
): void {
  if (status >= 400) {
    log(status >= 500 ? 'error' : 'info', route, { status, ms, ...stages });
  } else {
    let tally = tallies.get(route);
    if (tally === undefined) {
      tally = { requests: 0, totalMs: 0, maxMs: 0, byStatus: {}, stageMs: {} };
      tallies.set(route, tally);
    }
    tally.requests++;
    tally.totalMs += ms;
    if (ms > tally.maxMs) tally.maxMs = ms;
    const key = String(status);
    tally.byStatus[key] = (tally.byStatus[key] ?? 0) + 1;
    for (const [stage, value] of Object.entries(stages))
      tally.stageMs[stage] = (tally.stageMs[stage] ?? 0) + value;
  }
  const now = Date.now();
  if (now - lastSummaryAt >= REQUEST_SUMMARY_INTERVAL_MS) flushRequestSummaries(now);
}

/** Writes the pending request summaries (one line per route) and starts new tallies. */
export function flushRequestSummaries(now: number = Date.now()): void {
  lastSummaryAt = now;
  for (const [route, t] of tallies) {
    const fields: Record<string, string | number | boolean> = {
      requests: t.requests,
      meanMs: Math.round((t.totalMs / t.requests) * 10) / 10,
      maxMs: t.maxMs,
    };
    for (const [status, n] of Object.entries(t.byStatus)) fields[`status${status}`] = n;
    for (const [stage, value] of Object.entries(t.stageMs)) fields[`${stage}Total`] = value;
    log('info', `${route}.summary`, fields);
  }
  tallies.clear();
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The request's `traceparent` when well-formed, else a new one (sampled). */
export function traceparentOf(header: string | null | undefined): string {
  const value = header?.trim().toLowerCase();
  if (value !== undefined && TRACEPARENT.test(value) && !/^00-0{32}-/.test(value) && !/-0{16}-/.test(value))
    return value;
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

// Counts accumulate per isolate and are stored in the stats object in the background; one
// store at a time and at most one per interval, so under load many requests share one write.
let pending: Partial<Record<Outcome, number>> = {};
let flushing: Promise<void> | undefined;
let lastFlushAt = 0;
/** Whether a request's background work already holds this isolate's next store. */
let flushScheduled = false;
/** The default of STATS_FLUSH_INTERVAL_MS: one stats write per isolate a second, not one per request. */
const FLUSH_INTERVAL_MS = 1000;
/** Over this, a request would hold its background work too long (Workers cut waitUntil at 30 s). */
const MAX_FLUSH_INTERVAL_MS = 10_000;

/** Adds to the outcome counters (stored by scheduleStatsFlush or flushStats). */
export function count(outcome: Outcome, n = 1): void {
  if (n <= 0) return;
  pending[outcome] = (pending[outcome] ?? 0) + n;
}

function statsStub(env: Env) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName('stats'));
}

/**
 * The least time between two stores of one isolate's counts, from STATS_FLUSH_INTERVAL_MS
 * (default 1 s, 0 to 10 s; the tests take 50 ms, as they wait for each store). A value
 * set but unusable applies the default and says so once per isolate.
 */
export function statsFlushIntervalMs(env: Env): number {
  return numberSetting('STATS_FLUSH_INTERVAL_MS', env.STATS_FLUSH_INTERVAL_MS, {
    min: 0,
    max: MAX_FLUSH_INTERVAL_MS,
    fallback: FLUSH_INTERVAL_MS,
    expected: `0 to ${MAX_FLUSH_INTERVAL_MS} ms`,
    applied: (ms) => `${ms} ms apply`,
  });
}

/**
 * Stores this isolate's pending counts once the interval since its last store is up; call at
 * the end of a request and pass what it returns to the request's waitUntil. Only the first
 * request with counts while none is scheduled waits (on a timer, no CPU); the others' counts
 * ride along. Why not at the next request: an isolate that then goes idle and is evicted
 * never stored them, and GET /v1/admin/stats fell short of what was accepted.
 */
export function scheduleStatsFlush(env: Env): Promise<void> | undefined {
  if (flushScheduled || Object.keys(pending).length === 0) return undefined;
  flushScheduled = true;
  const wait = lastFlushAt + statsFlushIntervalMs(env) - Date.now();
  return (async () => {
    try {
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    } finally {
      // Counts made from here on are taken by this store or schedule the next one.
      flushScheduled = false;
    }
    await flushStats(env);
  })();
}

/** Writes pending counts to the stats object; resolves when this isolate's counts are stored. */
export async function flushStats(env: Env): Promise<void> {
  // Another request's flush may be in flight: wait for it on this request's own timer.
  // Awaiting that request's promise would leave this one waiting on another request,
  // which workerd cancels as hung.
  while (flushing) await new Promise((resolve) => setTimeout(resolve, 5));
  lastFlushAt = Date.now();
  const batch = pending;
  if (Object.keys(batch).length === 0) return;
  pending = {};
  flushing = statsStub(env)
    .addCounts(batch)
    .catch((err: unknown) => {
      // Put them back: counters are best-effort, but never silently lost on a transient error.
      for (const [k, n] of Object.entries(batch)) count(k as Outcome, n);
      log('warn', 'stats.flush_failed', { error: err instanceof Error ? err.message : 'unknown' });
    })
    .finally(() => {
      flushing = undefined;
    });
  await flushing;
}

/** Every outcome counter, including this isolate's unflushed counts. */
export async function readStats(env: Env): Promise<Record<Outcome, number>> {
  await flushStats(env);
  const stored = await statsStub(env).readCounts();
  const out = {} as Record<Outcome, number>;
  for (const o of OUTCOMES) out[o] = stored[o] ?? 0;
  return out;
}
