/**
 * The wire protocol of `POST /v1/collect`: the request envelope, partial-success
 * responses with per-event errors, and the error body of every non-2xx status.
 */
import { z } from 'zod';
import { COLLECT_STATUS, LIMITS } from './constants.ts';
import { type FieldError, fieldErrorsFromZod, issueMessage } from './errors.ts';
import { type CustomerAction, validateEvent } from './event.ts';
import { fastAcceptor } from './fast-accept.ts';
import { describeValue } from './json.ts';

/** The request body (sent as `text/plain` JSON so browsers need no CORS preflight). */
export const CollectEnvelopeSchema = z.object({
  writeKey: z
    .string()
    .min(1)
    .max(128)
    .refine((s) => s.isWellFormed(), 'string contains a lone surrogate (invalid Unicode)'),
  sentAt: z.iso.datetime({ offset: true }).optional(),
  batch: z.array(z.unknown()).min(1, 'batch is empty: send at least one event'),
});

export interface CollectRequest {
  writeKey: string;
  sentAt?: string;
  batch: CustomerAction[];
}

/** One rejected event: its index in `batch`, its id when readable, and every reason. */
export interface EventError {
  index: number;
  id?: string;
  errors: FieldError[];
}

/** The body of a 200 or 207 response. */
export interface CollectResponse {
  accepted: number;
  /** Events already seen (client retries): counted as delivered, not stored twice. */
  duplicates?: number;
  rejected: EventError[];
}

/** The body of every 4xx response. */
export interface ErrorBody {
  error: {
    code:
      | 'invalid_json'
      | 'invalid_envelope'
      | 'unknown_write_key'
      | 'origin_not_allowed'
      | 'too_large'
      | 'rate_limited'
      | 'unauthorized'
      | 'not_found'
      | 'no_route'
      | 'method_not_allowed'
      | 'unsupported_encoding';
    message: string;
    errors?: FieldError[];
  };
}

export type CollectParse =
  | {
      ok: true;
      writeKey: string;
      sentAt: string | undefined;
      events: { index: number; event: CustomerAction }[];
      rejected: EventError[];
    }
  | { ok: false; status: number; body: ErrorBody };

export function errorBody(
  code: ErrorBody['error']['code'],
  message: string,
  errors?: FieldError[],
): ErrorBody {
  return errors ? { error: { code, message, errors } } : { error: { code, message } };
}

const encoder = new TextEncoder();

function tooLarge(message: string): CollectParse {
  return { ok: false, status: COLLECT_STATUS.tooLarge, body: errorBody('too_large', message) };
}

/** The event id to echo in a rejection, when it is a readable string; never throws. */
function readableId(raw: unknown): string | undefined {
  try {
    if (raw === null || typeof raw !== 'object') return undefined;
    const id: unknown = (raw as { id?: unknown }).id;
    return typeof id === 'string' && id.isWellFormed() ? id.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses a collect body (the raw text) into accepted events and per-event errors.
 * Returns a status and error body for what cannot be partially accepted. Never throws.
 */
export function parseCollectBody(text: string, options: { now?: number } = {}): CollectParse {
  if (typeof text !== 'string') {
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody('invalid_json', `request body must be JSON text, received ${describeValue(text)}`),
    };
  }
  // Every UTF-16 unit is at least one UTF-8 byte, so a long text is rejected before encoding it.
  if (text.length > LIMITS.maxBatchBytes) {
    return tooLarge(
      `request body is more than ${LIMITS.maxBatchBytes} bytes (${text.length} characters). Send smaller batches.`,
    );
  }
  // ...and at most three, so a short one needs no counting at all.
  if (text.length * 3 > LIMITS.maxBatchBytes) {
    const bytes = encoder.encode(text).byteLength;
    if (bytes > LIMITS.maxBatchBytes)
      return tooLarge(
        `request body is ${bytes} bytes; at most ${LIMITS.maxBatchBytes}. Send smaller batches.`,
      );
  }
  const read = readJsonText(text);
  return read.ok ? parseCollectRequest(read.json, options) : read;
}

/**
 * Parses request text as JSON, or answers the 400 every Attune ingest endpoint gives for
 * unreadable bodies. Never throws.
 */
export function readJsonText(
  text: string,
): { ok: true; json: unknown } | { ok: false; status: number; body: ErrorBody } {
  try {
    return { ok: true, json: JSON.parse(text) };
  } catch {
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody('invalid_json', 'request body is not valid JSON'),
    };
  }
}

/** Like parseCollectBody, for a body already parsed from JSON (or built in process). Never throws. */
export function parseCollectRequest(json: unknown, options: { now?: number } = {}): CollectParse {
  try {
    return parseEnvelope(json, options);
  } catch (err) {
    // In-process callers can hand over getters that throw or proxies; bad input is a 400, never a crash.
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody(
        'invalid_envelope',
        `unreadable request: ${err instanceof Error ? err.message.slice(0, 200) : 'unknown error'}`,
      ),
    };
  }
}

function parseEnvelope(json: unknown, options: { now?: number }): CollectParse {
  // A well-formed envelope skips the zod parse (and its copy of the batch); see fast-accept.ts.
  if (fastAcceptor(CollectEnvelopeSchema)(json)) return parseBatch(json as CollectEnvelope, options);
  const env = CollectEnvelopeSchema.safeParse(json, { error: issueMessage });
  if (!env.success) {
    return {
      ok: false,
      status: COLLECT_STATUS.badRequest,
      body: errorBody(
        'invalid_envelope',
        'expected { writeKey, sentAt, batch: [...] }',
        fieldErrorsFromZod(env.error.issues, json, []),
      ),
    };
  }
  return parseBatch(env.data, options);
}

type CollectEnvelope = z.infer<typeof CollectEnvelopeSchema>;

function parseBatch({ writeKey, sentAt, batch }: CollectEnvelope, options: { now?: number }): CollectParse {
  if (batch.length > LIMITS.maxBatchEvents) {
    return tooLarge(
      `batch has ${batch.length} events; at most ${LIMITS.maxBatchEvents}. Send smaller batches.`,
    );
  }
  const now = options.now ?? Date.now();
  // The batch's events and its sentAt come from one clock: the window is read on it.
  const sent = sentAt !== undefined ? Date.parse(sentAt) : Number.NaN;
  const clock = Number.isFinite(sent) ? { now, sentAt: sent } : { now };
  const events: { index: number; event: CustomerAction }[] = [];
  const rejected: EventError[] = [];
  for (let index = 0; index < batch.length; index++) {
    const raw = batch[index];
    const result = validateEvent(raw, { ...clock, path: ['batch', index] });
    if (result.ok) events.push({ index, event: result.event });
    else {
      const id = readableId(raw);
      rejected.push(
        id !== undefined ? { index, id, errors: result.errors } : { index, errors: result.errors },
      );
    }
  }
  return { ok: true, writeKey, sentAt, events, rejected };
}

/** Describes an unexpected value (re-exported for producers that build their own messages). */
export { describeValue };
