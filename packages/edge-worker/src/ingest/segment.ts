/**
 * The Segment HTTP Tracking API mapped onto the canonical event: Segment-spec messages
 * (schema v0) are upcast by shared-schema's `validateEvent`; this module only reads the
 * request shapes (`/v1/batch` vs single calls), fills what Segment libraries leave to
 * the server (messageId, timestamp), and maps Segment's consent preferences onto Attune
 * purposes.
 */
import {
  COLLECT_STATUS,
  type ConsentState,
  type CustomerAction,
  type ErrorBody,
  type EventError,
  errorBody,
  LIMITS,
  leavesTimeToServer,
  normalizeConsent,
  readJsonText,
  validateEvent,
} from '@attune/shared-schema';
import { getConsentConfig } from '../config/consent-config.ts';
import type { ClientHints } from '../enrich/index.ts';
import type { Site } from '../sites/index.ts';

export type SegmentCall = 'batch' | 'track' | 'page' | 'identify';

/** A valid message, and what it says about its end user's client (never stored as sent). */
export interface SegmentEvent {
  index: number;
  event: CustomerAction;
  client: ClientHints;
}

export type SegmentFailure = { ok: false; status: number; body: ErrorBody };

export type SegmentParse =
  | {
      ok: true;
      sentAt: string | undefined;
      events: SegmentEvent[];
      rejected: EventError[];
    }
  | SegmentFailure;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Segment consent category names → Attune purposes. */
const SEGMENT_CATEGORY_PURPOSE: Readonly<Record<string, string>> = {
  analytics: 'analytics',
  personalization: 'personalization',
  personalisation: 'personalization',
  functional: 'personalization',
  marketing: 'marketing',
  advertising: 'marketing',
};

/**
 * The consent a Segment message carries: Attune's shape (`context.consent.categories`)
 * or Segment's (`context.consent.categoryPreferences`). Undefined when it carries none.
 */
export function segmentConsent(message: Json, policyVersion: string): ConsentState | undefined {
  const context = isObject(message.context) ? message.context : undefined;
  const consent = context && isObject(context.consent) ? context.consent : undefined;
  if (!consent) return undefined;
  const out: Record<string, boolean> = {};
  if (isObject(consent.categories)) {
    for (const [key, value] of Object.entries(consent.categories))
      if (typeof value === 'boolean') out[key] = value;
  } else if (isObject(consent.categoryPreferences)) {
    // A category named for the purpose decides it; the related ones (functional, advertising)
    // only when it is absent, and then all of them must grant: a person's "no" to
    // Personalization is not overruled by their "yes" to Functional.
    const direct: Record<string, boolean> = {};
    for (const [key, value] of Object.entries(consent.categoryPreferences)) {
      const name = key.toLowerCase();
      const purpose = Object.hasOwn(SEGMENT_CATEGORY_PURPOSE, name)
        ? SEGMENT_CATEGORY_PURPOSE[name]
        : undefined;
      if (purpose === undefined || typeof value !== 'boolean') continue;
      if (name === purpose || (name === 'personalisation' && purpose === 'personalization'))
        direct[purpose] = (direct[purpose] ?? true) && value;
      else out[purpose] = (out[purpose] ?? true) && value;
    }
    Object.assign(out, direct);
  } else return undefined;
  const version =
    typeof consent.policyVersion === 'string' &&
    consent.policyVersion.length > 0 &&
    consent.policyVersion.length <= 64
      ? consent.policyVersion
      : policyVersion;
  return { categories: out, policyVersion: version };
}

async function contentHash(value: unknown): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(value)));
  let out = '';
  for (const b of new Uint8Array(digest).slice(0, 16)) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Fewer bytes than a Segment library's smallest message takes: analytics-node adds
 * `timestamp`, `integrations`, `context.library`, a `messageId` and `_metadata` to every
 * call, about 250 bytes with an `event` of one letter (segment-library.test.ts measures it).
 */
const SMALLEST_LIBRARY_MESSAGE_BYTES = 200;

/**
 * Messages in one `/v1/batch`. Segment caps only bytes (500 KB a batch, 32 KB a message),
 * and so, in effect, does this: the cap is above what the body limit holds of the smallest
 * messages a library sends, so it refuses only bodies of near-empty objects. A library's
 * batch size is its user's to choose (analytics-node's `flushAt` has no maximum, and its
 * own byte count does not hold batches to 480 KB), and a 413 loses the whole batch: the
 * library retries it as it was and then drops it. At 500, `flushAt: 600` lost every batch.
 * The browser's `LIMITS.maxBatchEvents` (100) does not apply here.
 */
export const SEGMENT_BATCH_MAX_MESSAGES = Math.ceil(LIMITS.maxBatchBytes / SMALLEST_LIBRARY_MESSAGE_BYTES);

function tooLarge(message: string): SegmentFailure {
  return { ok: false, status: COLLECT_STATUS.tooLarge, body: errorBody('too_large', message) };
}

/** The request body as a JSON object, or the 400 that says why not. */
export function readSegmentJson(text: string): { ok: true; json: Json } | SegmentFailure {
  const read = readJsonText(text);
  if (!read.ok) return read;
  if (!isObject(read.json)) {
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody('invalid_envelope', 'expected a JSON object'),
    };
  }
  return { ok: true, json: read.json };
}

/** The `writeKey` a body carries (Segment's alternative to Basic auth), if any. */
export function bodyWriteKey(json: Json): string | undefined {
  return typeof json.writeKey === 'string' && json.writeKey.length <= 256 ? json.writeKey : undefined;
}

/** Parses a Segment API body (already read as JSON) into canonical events and per-message errors. Never throws. */
export async function parseSegmentBody(
  env: Env,
  site: Site,
  call: SegmentCall,
  json: Json,
  now: number,
): Promise<SegmentParse> {
  let messages: unknown[];
  let shared: Json = {};
  if (call === 'batch') {
    if (!Array.isArray(json.batch) || json.batch.length === 0) {
      return {
        ok: false,
        status: COLLECT_STATUS.badRequest,
        body: errorBody('invalid_envelope', 'expected { batch: [...] } with at least one message', [
          { path: 'batch', message: 'required: expected a non-empty array' },
        ]),
      };
    }
    if (json.batch.length > SEGMENT_BATCH_MAX_MESSAGES) {
      return tooLarge(
        `batch has ${json.batch.length} messages; at most ${SEGMENT_BATCH_MAX_MESSAGES}: send smaller batches`,
      );
    }
    messages = json.batch;
    if (isObject(json.context)) shared = json.context;
  } else {
    messages = [{ ...json, type: call }];
  }
  const sentAt = typeof json.sentAt === 'string' ? json.sentAt : undefined;

  const config = await getConsentConfig(env, site.id);
  const events: SegmentEvent[] = [];
  const rejected: EventError[] = [];
  for (let index = 0; index < messages.length; index++) {
    const raw = messages[index];
    if (!isObject(raw)) {
      rejected.push({ index, errors: [{ path: `batch[${index}]`, message: 'expected a message object' }] });
      continue;
    }
    const message: Json = { ...raw };
    // Segment's API makes a messageId when a producer sends none. Ours is derived from what
    // a retry sends again unchanged (the message, its place in the batch, the batch's shared
    // context and sentAt), so a retried request still dedupes while two identical messages
    // of one batch stay two events.
    // null as absent, as Segment's API takes it.
    if (message.messageId == null) {
      message.messageId = `auto-${await contentHash([index, raw, shared, sentAt ?? null])}`;
    }
    if (Object.keys(shared).length > 0)
      message.context = { ...shared, ...(isObject(raw.context) ? raw.context : {}) };
    // receivedAt: Segment libraries may leave the time to the server; such a message is
    // timed on arrival, and its id then comes from the site, its person and its messageId
    // (see shared-schema).
    // The time window is read on the clock that stamped the message (its own sentAt, else
    // the batch's), whose offset the enrichment then takes off (clientFacts); a message timed
    // on arrival has the Worker's time, with no sender clock to correct.
    const client = clientHintsOf(message);
    const sentOn = leavesTimeToServer(message)
      ? undefined
      : (instant(typeof raw.sentAt === 'string' ? raw.sentAt.slice(0, 64) : undefined) ?? instant(sentAt));
    if (sentOn !== undefined) client.sentAt = sentOn;
    const result = validateEvent(message, {
      now,
      ...(sentOn !== undefined ? { sentAt: sentOn } : {}),
      receivedAt: now,
      scope: site.id,
      path: ['batch', index],
    });
    if (!result.ok) {
      const id = typeof raw.messageId === 'string' ? raw.messageId.slice(0, 64) : undefined;
      rejected.push(
        id !== undefined ? { index, id, errors: result.errors } : { index, errors: result.errors },
      );
      continue;
    }
    const event = result.event;
    const consent = segmentConsent(message, config.policyVersion);
    // The claim is attached after validation (the upcast drops it): normalized against the
    // site's categories, so the event keeps a valid, bounded claim (any keys, any number of
    // them, would make a queue message the consumer refuses, or one over the Queues limit).
    if (consent) event.context = { ...(event.context ?? {}), consent: normalizeConsent(consent, config) };
    events.push({ index, event, client });
  }
  return { ok: true, sentAt, events, rejected };
}

const instant = (iso: string | undefined): number | undefined => {
  const ms = iso !== undefined ? Date.parse(iso) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
};

const hint = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 && value.length <= 64 ? value : undefined;

/**
 * What the message says about its end user's client: `context.userAgent` (read for its
 * device families, never stored) and `context.location` (a two-letter country code,
 * region and city names), each only when given.
 */
function clientHintsOf(message: Json): ClientHints {
  const context = isObject(message.context) ? message.context : {};
  const hints: ClientHints = {};
  if (typeof context.userAgent === 'string' && context.userAgent.length > 0)
    hints.userAgent = context.userAgent.slice(0, 512);
  const location = isObject(context.location) ? context.location : {};
  const country = hint(location.country);
  if (country !== undefined && /^[a-z]{2}$/i.test(country)) hints.country = country.toUpperCase();
  const region = hint(location.region);
  if (region !== undefined) hints.region = region;
  const city = hint(location.city);
  if (city !== undefined) hints.city = city;
  return hints;
}
