/**
 * `GET /v1/decide?slots=hero,recommendations&writeKey=…&anonymousId=…[&userId=…&userIdSignature=…][&productId=…]`:
 * the content chosen for the caller's person, per slot, with reasons (DecideResponse from
 * shared-schema). Cross-origin for the site's allowed origins (CORS); the first-party
 * variant under `/attune/` (edge-proxy mode, anonymous id from the `attune_aid` cookie)
 * shares `answerDecide`. Responses are personal: `Cache-Control: private, no-store`.
 * Limited per IP (the site's bucket shared with collect: 429 with Retry-After), and each
 * exposure is logged once per window (served-memo.ts).
 */
import { type DecideResponse, type EventMessage, SLOT_NAME_PATTERN } from '@attune/shared-schema';
import type { Context } from 'hono';
import { Hono } from 'hono';
import type { AppEnv } from '../app.ts';
import { checkUserIdSignature } from '../identity/index.ts';
import { forwardMessages } from '../ingest/outbox.ts';
import { clientAddress, type RateDecision, underIpLimit } from '../ingest/rate-limit.ts';
import { numberSetting } from '../observability/index.ts';
import type { PersonKey } from '../profile/types.ts';
import { consentFrom, parseCookies } from '../proxy/cookies.ts';
import { getSiteByWriteKey, isOriginAllowed, type Site } from '../sites/index.ts';
import { decide, MAX_SLOTS } from './decide.ts';
import { firstServings } from './served-memo.ts';

export const decideRoutes = new Hono<AppEnv>();

/** The person key of an anonymous id; `anon:` (an empty profile) without one. */
export function anonymousPersonKey(anonymousId: string | undefined): PersonKey {
  return anonymousId !== undefined && anonymousId.length > 0 && anonymousId.length <= 128
    ? `anon:${anonymousId}`
    : 'anon:';
}

/**
 * The decision budget from DECISION_BUDGET_MS (default 50 ms, at most 1 s). A value set but
 * unusable ("50ms", -1, or empty, which read as 0 ms: every page with the defaults) or over
 * the cap applies the default or the cap, and says so once per isolate.
 */
export function decisionBudgetMs(env: Env): number {
  return numberSetting('DECISION_BUDGET_MS', env.DECISION_BUDGET_MS, {
    min: 0,
    max: 1000,
    fallback: 50,
    capAtMax: true,
    expected: '0 to 1000 ms',
    applied: (ms) => `${ms} ms apply`,
  });
}

type Problem = { status: 400 | 401 | 403 | 429; code: string; message: string; path?: string };

function problem(c: Context<AppEnv>, p: Problem, headers: Record<string, string> = {}) {
  return c.json(
    { error: { code: p.code, message: p.message, ...(p.path !== undefined ? { path: p.path } : {}) } },
    p.status,
    { 'cache-control': 'no-store', ...headers },
  );
}

/** Parses `slots`: a comma-separated list of 1..10 slot names. */
export function parseSlots(raw: string | undefined): string[] | Problem {
  const slots = [
    ...new Set(
      (raw ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
  // Also `slots=,`: commas and spaces name no slot.
  if (slots.length === 0)
    return {
      status: 400,
      code: 'invalid_request',
      path: 'slots',
      message: 'slots is required, e.g. slots=hero,recommendations',
    };
  if (slots.length > MAX_SLOTS)
    return {
      status: 400,
      code: 'invalid_request',
      path: 'slots',
      message: `at most ${MAX_SLOTS} slots per request`,
    };
  const bad = slots.find((s) => !SLOT_NAME_PATTERN.test(s));
  if (bad !== undefined)
    return {
      status: 400,
      code: 'invalid_request',
      path: 'slots',
      message: `slot "${bad.slice(0, 64)}" is not a valid name: use lower-case letters, digits, "-" or "_"`,
    };
  return slots;
}

function optionalId(c: Context<AppEnv>, name: string): string | undefined | Problem {
  const value = c.req.query(name);
  if (value === undefined || value === '') return undefined;
  if (value.length > 128)
    return {
      status: 400,
      code: 'invalid_request',
      path: name,
      message: `${name} is longer than 128 characters`,
    };
  return value;
}

const isProblem = (v: unknown): v is Problem => v !== null && typeof v === 'object' && 'status' in v;

/** Answers a decide request for a known site, with the anonymous id from the query or a fallback (the cookie). */
export async function answerDecide(
  c: Context<AppEnv>,
  site: Site,
  options: { fallbackAnonymousId?: string; headers?: Record<string, string> } = {},
) {
  const headers = { 'cache-control': 'private, no-store', ...options.headers };
  const slots = parseSlots(c.req.query('slots'));
  if (isProblem(slots)) return problem(c, slots, headers);
  const fields = ['anonymousId', 'userId', 'userIdSignature', 'productId'] as const;
  const values: Partial<Record<(typeof fields)[number], string>> = {};
  for (const name of fields) {
    const v = optionalId(c, name);
    if (isProblem(v)) return problem(c, v, headers);
    if (v !== undefined) values[name] = v;
  }
  const anonymousId = values.anonymousId ?? options.fallbackAnonymousId;
  // A signed user id is the person. Otherwise the anonymous id decides, and its profile
  // follows a merge to its person in the same round trip, within the decision budget (a
  // user id whose signature does not verify, has expired, or, on a site binding signatures
  // to the browser, covers another browser than `anonymousId`, is ignored: looking up the
  // browser's alias first waited on its ProfileDO with no budget, and a failing one
  // answered 500).
  const signedIn =
    values.userId !== undefined &&
    (await checkUserIdSignature(site, values.userId, values.userIdSignature, Date.now(), anonymousId))
      .verdict === 'valid';
  const person = {
    personKey: signedIn ? (`user:${values.userId}` as const) : anonymousPersonKey(anonymousId),
  };
  const browserConsent = consentFrom(parseCookies(c.req.header('cookie') ?? null));
  const budgetMs = decisionBudgetMs(c.env);
  // Every decide reads a profile (of any id a caller makes up) and co-visit shards: limited
  // per IP like collect, in the same bucket — one address's budget for the whole browser API,
  // which an attacker cannot double by alternating routes, and which a page (one collect
  // batch and a few decides per view) stays far below at the default 50/s, burst 200.
  const limited = await underIpLimit(c.env, site, clientAddress(c.req.raw.headers), budgetMs, () =>
    decide(c.env, {
      siteId: site.id,
      personKey: person.personKey,
      ...(anonymousId !== undefined ? { anonymousId } : {}),
      slots,
      ...(values.productId !== undefined ? { productId: values.productId } : {}),
      ...(browserConsent !== undefined ? { browserConsent } : {}),
      gpc: c.req.header('sec-gpc') === '1',
      budgetMs,
    }),
  );
  if (!limited.allowed) return rateLimited(c, limited, headers);
  recordServed(c, limited.value.served);
  return c.json(limited.value.response satisfies DecideResponse, 200, headers);
}

/** 429 for a caller over its per-IP limit: nothing was decided or logged; retry after the time given. */
function rateLimited(
  c: Context<AppEnv>,
  rate: Extract<RateDecision, { allowed: false }>,
  headers: Record<string, string>,
) {
  return problem(
    c,
    {
      status: 429,
      code: 'rate_limited',
      message: `too many decide requests from this address; retry after ${rate.retryAfterSeconds} s`,
    },
    { ...headers, 'cache-control': 'no-store', 'retry-after': String(rate.retryAfterSeconds) },
  );
}

/**
 * How long `decision.served` events wait before they are queued: long enough for the
 * response they belong to (a decide answer, a rewritten page's last bytes) to be out.
 * Sent at the end of the document, the queue call was served before the page's last bytes
 * (≈ 5–10 % more total time under wrangler dev, see README, "Benchmarks").
 */
export const SERVED_AFTER_MS = 50;

/**
 * Queues `decision.served` events after the response (never delays it, never fails it),
 * those of exposures already logged within the window left out (served-memo.ts).
 * Each request sends its own few small messages (split to the queue's limits by
 * sendMessages): a send shared with other requests would leave this request waiting on
 * another one's timer, which workerd cancels as a hung promise.
 */
export function recordServed(c: Context<AppEnv>, served: EventMessage[]): void {
  // Only exposures not logged within the window: a repeat of one is in the log already.
  const first = firstServings(served);
  if (first.length === 0) return;
  c.executionCtx.waitUntil(
    new Promise((resolve) => setTimeout(resolve, SERVED_AFTER_MS)).then(() => queueServed(c.env, first)),
  );
}

/**
 * Queues `decision.served` events; what the queue refuses is parked at the person's object
 * (forwardMessages). Resolves once sent, parked or given up; never rejects.
 */
export function queueServed(env: Env, served: EventMessage[]): Promise<void> {
  return forwardMessages(env, served);
}

function corsHeaders(origin: string): Record<string, string> {
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

decideRoutes.options('/v1/decide', async (c) => {
  const origin = c.req.header('origin');
  const site = await getSiteByWriteKey(c.env, c.req.query('writeKey') ?? '');
  // Preflight carries no credentials: allow only an origin the named site lists. An unknown
  // write key names no site, so it allows no origin (before, it allowed every origin).
  if (origin === undefined || !site || !isOriginAllowed(site, origin)) return c.body(null, 403);
  return c.body(null, 204, {
    ...corsHeaders(origin),
    'access-control-allow-methods': 'GET, OPTIONS',
    'access-control-allow-headers': 'content-type',
    'access-control-max-age': '86400',
  });
});

decideRoutes.get('/v1/decide', async (c) => {
  const origin = c.req.header('origin');
  const writeKey = c.req.query('writeKey');
  if (writeKey === undefined || writeKey === '')
    return problem(c, {
      status: 400,
      code: 'invalid_request',
      path: 'writeKey',
      message: 'writeKey is required',
    });
  const site = await getSiteByWriteKey(c.env, writeKey);
  if (!site)
    return problem(c, {
      status: 401,
      code: 'unknown_write_key',
      message: 'unknown writeKey: check the key in your Attune site settings',
    });
  if (origin !== undefined && !isOriginAllowed(site, origin))
    return problem(c, {
      status: 403,
      code: 'origin_not_allowed',
      message: `origin ${origin.slice(0, 200)} is not allowed for this site`,
    });
  return answerDecide(c, site, { headers: origin !== undefined ? corsHeaders(origin) : {} });
});
