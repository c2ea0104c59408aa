/**
 * The Segment HTTP Tracking API mapped onto the canonical event: Segment-spec messages
 * (schema v0) are upcast by shared-schema's `validateEvent`; this module only reads the
 * request shapes (`/v1/batch` vs single calls), fills what Segment libraries leave to
 * the server (timestamp), and maps Segment's consent preferences onto Attune purposes.
 */
import {
  COLLECT_STATUS,
  type ConsentState,
  type CustomerAction,
  type ErrorBody,
  type EventError,
  errorBody,
  LIMITS,
  normalizeConsent,
  readJsonText,
  validateEvent,
} from '@attune/shared-schema';
import { getConsentConfig } from '../config/consent-config.ts';
import type { Site } from '../sites/index.ts';

export type SegmentCall = 'batch' | 'track' | 'page' | 'identify';

export type SegmentParse =
  | {
      ok: true;
      sentAt: string | undefined;
      events: { index: number; event: CustomerAction }[];
      rejected: EventError[];
    }
  | { ok: false; status: number; body: ErrorBody };

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
    for (const [key, value] of Object.entries(consent.categoryPreferences)) {
      const purpose = SEGMENT_CATEGORY_PURPOSE[key.toLowerCase()];
      if (purpose !== undefined && typeof value === 'boolean')
        out[purpose] = (out[purpose] ?? false) || value;
    }
  } else return undefined;
  const version =
    typeof consent.policyVersion === 'string' &&
    consent.policyVersion.length > 0 &&
    consent.policyVersion.length <= 64
      ? consent.policyVersion
      : policyVersion;
  return { categories: out, policyVersion: version };
}

async function contentHash(value: Json): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(value)));
  let out = '';
  for (const b of new Uint8Array(digest).slice(0, 16)) out += b.toString(16).padStart(2, '0');
  return out;
}

function tooLarge(message: string): SegmentParse {
  return { ok: false, status: COLLECT_STATUS.tooLarge, body: errorBody('too_large', message) };
}

/** Parses a Segment API body into canonical events and per-message errors. Never throws. */
export async function parseSegmentBody(
  env: Env,
  site: Site,
  call: SegmentCall,
  text: string,
  now: number,
): Promise<SegmentParse> {
  const read = readJsonText(text);
  if (!read.ok) return read;
  const json = read.json;
  if (!isObject(json)) {
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody('invalid_envelope', 'expected a JSON object'),
    };
  }
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
    if (json.batch.length > LIMITS.maxBatchEvents) {
      return tooLarge(`batch has ${json.batch.length} messages; at most ${LIMITS.maxBatchEvents}`);
    }
    messages = json.batch;
    if (isObject(json.context)) shared = json.context;
  } else {
    messages = [{ ...json, type: call }];
  }

  const config = await getConsentConfig(env, site.id);
  const events: { index: number; event: CustomerAction }[] = [];
  const rejected: EventError[] = [];
  for (let index = 0; index < messages.length; index++) {
    const raw = messages[index];
    if (!isObject(raw)) {
      rejected.push({ index, errors: [{ path: `batch[${index}]`, message: 'expected a message object' }] });
      continue;
    }
    const message: Json = { ...raw };
    // Segment's API makes a messageId when a producer sends none; ours is derived from the
    // content, so a retried request still dedupes.
    if (message.messageId === undefined) message.messageId = `auto-${await contentHash(raw)}`;
    // Segment libraries may leave the time to the server and put shared context on the batch.
    if (message.timestamp === undefined && message.originalTimestamp === undefined) {
      message.timestamp = new Date(now).toISOString();
    }
    if (Object.keys(shared).length > 0)
      message.context = { ...shared, ...(isObject(raw.context) ? raw.context : {}) };
    const result = validateEvent(message, { now, path: ['batch', index] });
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
    events.push({ index, event });
  }
  const sentAt = typeof json.sentAt === 'string' ? json.sentAt : undefined;
  return { ok: true, sentAt, events, rejected };
}
