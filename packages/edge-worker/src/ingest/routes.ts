/**
 * Ingest routes: `POST /v1/collect` (browser SDK, text/plain JSON, partial success) and
 * the Segment-compatible HTTP Tracking API (`/v1/batch`, `/v1/track`, `/v1/page`,
 * `/v1/identify`) for server-side producers, authenticated with the site's server key.
 * Every failure a client can cause answers 4xx with a readable body, never 5xx.
 */
import {
  COLLECT_STATUS,
  type CollectResponse,
  type ErrorBody,
  type EventError,
  errorBody,
  LIMITS,
  parseCollectBody,
} from '@attune/shared-schema';
import { type Context, Hono } from 'hono';
import { basicUsername, siteByServerKey, siteOfServerKey } from '../admin/auth.ts';
import type { AppEnv } from '../app.ts';
import { clientFacts, requestFacts } from '../enrich/index.ts';
import { count, log, logRequest, scheduleStatsFlush, traceparentOf } from '../observability/index.ts';
import { getSiteByWriteKey, isOriginAllowed, listSites, type Site } from '../sites/index.ts';
import { type BodyRead, readBodyDecoded } from './body.ts';
import { ingestBatch, type PipelineOutcome } from './pipeline.ts';
import { checkIpLimit, clientAddress } from './rate-limit.ts';
import { bodyWriteKey, parseSegmentBody, readSegmentJson, type SegmentCall } from './segment.ts';

export const ingestRoutes = new Hono<AppEnv>();

ingestRoutes.get('/healthz', (c) => c.json({ ok: true }));

type IngestContext = Context<AppEnv>;

function corsHeaders(origin: string): Record<string, string> {
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Methods': 'POST, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type, Authorization, traceparent',
    'Access-Control-Expose-Headers': 'Retry-After',
    'Access-Control-Max-Age': '86400',
    Vary: 'Origin',
  };
}

function fail(
  status: number,
  body: ErrorBody | SegmentErrorBody,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** A Content-Encoding the routes cannot read (not gzip). */
const UNSUPPORTED_MEDIA_TYPE = 415;

/** The status and error of a body that could not be read, saying what to send instead. */
function unreadableBody(read: Exclude<BodyRead, { ok: true }>): { status: number; body: ErrorBody } {
  switch (read.reason) {
    case 'unsupported_encoding':
      return {
        status: UNSUPPORTED_MEDIA_TYPE,
        body: errorBody(
          'unsupported_encoding',
          `Content-Encoding ${JSON.stringify(read.encoding)} is not supported; send gzip or no encoding`,
        ),
      };
    case 'too_large':
      return {
        status: COLLECT_STATUS.tooLarge,
        body: errorBody(
          'too_large',
          `request body is larger than ${LIMITS.maxBatchBytes} bytes (after decompression); send smaller batches`,
        ),
      };
    default:
      return {
        status: COLLECT_STATUS.badRequest,
        body: errorBody('invalid_json', 'request body could not be read'),
      };
  }
}

/** Keeps `promise` running after the response (its failure logged when no execution context watches it). */
export function waitUntil(c: Context<AppEnv>, promise: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(promise);
  } catch {
    // No execution context (app.request in a unit test): let it run unobserved, errors logged.
    promise.catch((err: unknown) =>
      log('warn', 'background.failed', { error: err instanceof Error ? err.name : 'unknown' }),
    );
  }
}

/** The response body and status of a judged batch: 200, 207 with per-event errors, or 400 when nothing was valid. */
function judged(outcome: PipelineOutcome, rejected: EventError[], headers: Record<string, string>): Response {
  const all = [...rejected, ...outcome.rejected].sort((a, b) => a.index - b.index);
  const handled = outcome.accepted + outcome.duplicates + outcome.dropped;
  if (handled === 0 && all.length > 0) {
    return fail(
      COLLECT_STATUS.badRequest,
      errorBody(
        'invalid_envelope',
        `no event in the batch is valid (${all.length} rejected); see errors`,
        all.flatMap((e) => e.errors),
      ),
      headers,
    );
  }
  const body: CollectResponse & { dropped: number } = {
    accepted: outcome.accepted,
    duplicates: outcome.duplicates,
    dropped: outcome.dropped,
    rejected: all,
  };
  return new Response(JSON.stringify(body), {
    status: all.length > 0 ? COLLECT_STATUS.partial : COLLECT_STATUS.ok,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

ingestRoutes.options('/v1/collect', async (c) => {
  const origin = c.req.header('origin');
  const sites = await listSites(c.env);
  if (origin === undefined || !sites.some((s) => isOriginAllowed(s, origin))) {
    return fail(COLLECT_STATUS.forbidden, errorBody('origin_not_allowed', 'this origin may not send events'));
  }
  return new Response(null, { status: 204, headers: corsHeaders(origin) });
});

/** Stage timings of one request, for its log line (no personal data). */
type Stages = Record<string, number>;

ingestRoutes.post('/v1/collect', async (c) => {
  const started = Date.now();
  const stages: Stages = {};
  const response = await collect(c, stages);
  const flush = scheduleStatsFlush(c.env);
  if (flush) waitUntil(c, flush);
  logRequest('collect', response.status, Date.now() - started, stages);
  return response;
});

async function collect(c: IngestContext, stages: Stages): Promise<Response> {
  // gzip is read as on the Segment routes: server producers compress (the tag never does).
  const read = await readBodyDecoded(c.req.raw, LIMITS.maxBatchBytes);
  if (!read.ok) {
    count('invalid');
    const refused = unreadableBody(read);
    return fail(refused.status, refused.body);
  }
  const now = Date.now();
  const parsed = parseCollectBody(read.text, { now });
  if (!parsed.ok) {
    count('invalid');
    return fail(parsed.status, parsed.body);
  }
  const site = await getSiteByWriteKey(c.env, parsed.writeKey);
  if (!site) {
    count('invalid', parsed.events.length + parsed.rejected.length);
    return fail(
      COLLECT_STATUS.unauthorized,
      errorBody('unknown_write_key', 'unknown write key; check the writeKey your page sends'),
    );
  }
  const origin = c.req.header('origin');
  const serverSite = await siteByServerKey(c.env, c.req.header('authorization'));
  const trusted = serverSite?.id === site.id;
  if (!trusted && !isOriginAllowed(site, origin)) {
    count('invalid', parsed.events.length + parsed.rejected.length);
    return fail(
      COLLECT_STATUS.forbidden,
      errorBody(
        'origin_not_allowed',
        `origin ${origin === undefined ? '(none)' : JSON.stringify(origin.slice(0, 200))} is not allowed for this write key`,
      ),
    );
  }
  const headers = origin !== undefined && isOriginAllowed(site, origin) ? corsHeaders(origin) : {};
  count('invalid', parsed.rejected.length);

  if (!trusted) {
    const rateStarted = Date.now();
    const browsers = new Set(parsed.events.map(({ event }) => event.anonymousId)).size;
    const rate = await checkIpLimit(c.env, site, clientAddress(c.req.raw.headers), browsers);
    stages.rateMs = Date.now() - rateStarted;
    if (!rate.allowed) {
      count('rate_limited', parsed.events.length);
      return fail(
        COLLECT_STATUS.tooManyRequests,
        errorBody('rate_limited', `too many requests; retry after ${rate.retryAfterSeconds} s`),
        { ...headers, 'Retry-After': String(rate.retryAfterSeconds) },
      );
    }
  }
  const outcome = await ingestBatch(
    c.env,
    { waitUntil: (p) => waitUntil(c, p) },
    {
      site,
      events: parsed.events,
      facts: requestFacts(c.req.raw, parsed.sentAt, now),
      gpc: c.req.header('sec-gpc') === '1',
      trusted,
      traceparent: traceparentOf(c.req.header('traceparent')),
      pathPrefix: 'batch',
      ...(trusted
        ? {}
        : {
            anonymousLimit: {
              perSecond: site.settings.rateLimit.anonymousPerSecond,
              burst: site.settings.rateLimit.anonymousBurst,
            },
          }),
    },
  );
  stages.profileMs = outcome.timings.profileMs;
  stages.queueMs = outcome.timings.queueMs;
  if (outcome.rateLimited.events === 0) return judged(outcome, parsed.rejected, headers);
  // Rate-limited events are to be sent again: Retry-After says when, on a 429 and on a 207
  // where others were handled (a batch of several browsers; per-event errors say which).
  const retry = outcome.rateLimited.retryAfterSeconds;
  const retryHeaders = { ...headers, 'Retry-After': String(retry) };
  const handled = outcome.accepted + outcome.duplicates + outcome.dropped;
  if (handled === 0) {
    return fail(
      COLLECT_STATUS.tooManyRequests,
      errorBody('rate_limited', `too many requests from this browser; retry after ${retry} s`),
      retryHeaders,
    );
  }
  return judged(outcome, parsed.rejected, retryHeaders);
}

/** One Segment HTTP Tracking API route. */
function segmentRoute(call: SegmentCall) {
  return async (c: IngestContext): Promise<Response> => {
    const started = Date.now();
    const response = await segment(c, call);
    const flush = scheduleStatsFlush(c.env);
    if (flush) waitUntil(c, flush);
    logRequest(`segment.${call}`, response.status, Date.now() - started);
    return response;
  };
}

/** Our error body with Segment's top-level fields (additional fields: clients ignore what they do not read). */
type SegmentErrorBody = ErrorBody & Pick<ErrorBody['error'], 'code' | 'message'>;

/**
 * A Segment route's error: our `error` object, plus top-level `code` and `message`, which
 * Segment libraries read (analytics-python indexes `payload['code']` on every non-200).
 */
function segmentFail(status: number, body: ErrorBody, headers: Record<string, string> = {}): Response {
  return fail(status, { code: body.error.code, message: body.error.message, ...body }, headers);
}

function segmentUnauthorized(): Response {
  count('invalid');
  return segmentFail(
    COLLECT_STATUS.unauthorized,
    errorBody(
      'unauthorized',
      "send the site's server key as the HTTP Basic auth username or as the body's writeKey (Segment's write key field); the public browser write key is not accepted here",
    ),
    { 'WWW-Authenticate': 'Basic realm="attune"' },
  );
}

async function segment(c: IngestContext, call: SegmentCall): Promise<Response> {
  // Basic credentials decide when sent; without them the body's writeKey may name the
  // server key, as Segment's API allows (analytics-python 2.3.x sends no Basic auth).
  const basicKey = basicUsername(c.req.header('authorization'));
  const basicSite = basicKey ? await siteOfServerKey(c.env, basicKey) : undefined;
  if (basicKey && !basicSite) return segmentUnauthorized();
  const read = await readBodyDecoded(c.req.raw, LIMITS.maxBatchBytes);
  if (!read.ok) {
    count('invalid');
    const refused = unreadableBody(read);
    return segmentFail(refused.status, refused.body);
  }
  const body = readSegmentJson(read.text);
  if (!body.ok) {
    if (!basicSite) return segmentUnauthorized();
    count('invalid');
    return segmentFail(body.status, body.body);
  }
  const writeKey = bodyWriteKey(body.json);
  const site: Site | undefined =
    basicSite ?? (writeKey !== undefined ? await siteOfServerKey(c.env, writeKey) : undefined);
  if (!site) return segmentUnauthorized();
  const now = Date.now();
  const parsed = await parseSegmentBody(c.env, site, call, body.json, now);
  if (!parsed.ok) {
    count('invalid');
    return segmentFail(parsed.status, parsed.body);
  }
  count('invalid', parsed.rejected.length);
  const request = requestFacts(c.req.raw, parsed.sentAt, now);
  const outcome = await ingestBatch(
    c.env,
    { waitUntil: (p) => waitUntil(c, p) },
    {
      site,
      events: parsed.events.map(({ index, event, client }) => ({
        index,
        event,
        facts: clientFacts(request, client),
      })),
      facts: request,
      gpc: c.req.header('sec-gpc') === '1',
      trusted: true,
      traceparent: traceparentOf(c.req.header('traceparent')),
      pathPrefix: 'batch',
    },
  );
  const response = judged(outcome, parsed.rejected, {});
  if (response.status >= 400) return segmentFail(response.status, (await response.json()) as ErrorBody);
  // Segment libraries only look at the status; `success` keeps their debug logs happy. A
  // batch partly refused is still a 200, as Segment's own API answers it: analytics-python
  // takes any other status for a failed batch and sends it whole again, up to 10 times, for
  // messages that would be refused again. `rejected` names them by index.
  const accepted = (await response.json()) as Record<string, unknown>;
  return c.json({ success: true, ...accepted }, 200);
}

ingestRoutes.post('/v1/batch', segmentRoute('batch'));
ingestRoutes.post('/v1/track', segmentRoute('track'));
ingestRoutes.post('/v1/page', segmentRoute('page'));
ingestRoutes.post('/v1/identify', segmentRoute('identify'));
