/**
 * The canonical event: one `CustomerAction` envelope (schema v1) for every producer,
 * with common fields, a context, and a flexible `properties` map. `validateEvent` is the
 * single entry point: it upcasts older shapes, validates, and returns readable errors.
 */
import { z } from 'zod';
import { EVENT_NAME_PATTERN, EVENT_TYPES, LIMITS, SCHEMA_VERSION, ULID_PATTERN } from './constants.ts';
import { type FieldError, fieldErrorsFromZod, formatPath, issueMessage } from './errors.ts';
import { propertiesSchemaFor } from './events.ts';
import { fastAcceptor } from './fast-accept.ts';
import { checkJsonMapBytes, type JsonIssue, type JsonValue, jsonByteLength } from './json.ts';
import { upcast } from './versions.ts';

export type { FieldError } from './errors.ts';
export type { JsonValue } from './json.ts';

/** Ids end up as storage keys downstream: lone surrogates would not survive UTF-8. */
const idString = z
  .string()
  .min(1)
  .max(LIMITS.maxIdLength)
  .refine((s) => s.isWellFormed(), 'string contains a lone surrogate (invalid Unicode)');
const shortText = z.string().max(256);
const url = z.string().max(LIMITS.maxUrlLength);

export const ConsentStateSchema = z.object({
  categories: z.record(z.string().min(1).max(64), z.boolean()),
  policyVersion: z.string().min(1).max(64),
});

/** What the producer knew about where the event happened. All optional. */
export const EventContextSchema = z.looseObject({
  page: z.looseObject({ url, path: url, referrer: url, title: shortText, search: url }).partial().optional(),
  locale: z.string().max(35).optional(),
  timezone: z.string().max(64).optional(),
  screen: z
    .object({
      width: z.number().int().nonnegative(),
      height: z.number().int().nonnegative(),
      density: z.number().positive().optional(),
    })
    .optional(),
  campaign: z
    .object({ source: shortText, medium: shortText, name: shortText, term: shortText, content: shortText })
    .partial()
    .optional(),
  library: z.object({ name: z.string().max(64), version: z.string().max(32) }).optional(),
  consent: ConsentStateSchema.optional(),
});

/**
 * Free-form maps are checked by checkJsonMap before zod sees them; z.custom keeps the
 * object as received (a rebuilt record would turn an own `__proto__` key into a prototype).
 */
const jsonMap = z.custom<Record<string, JsonValue>>(
  (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  'expected object',
);

/** The schema of `properties` and `traits` (exported so the JSON Schema export can describe it). */
export const JsonMapSchema = jsonMap;

/** The v1 envelope. Strict: a misspelt field is an error, not silently dropped. */
export const CustomerActionSchema = z.strictObject({
  id: z.string().regex(ULID_PATTERN, 'expected a ULID (26 Crockford base32 characters)'),
  type: z.enum(EVENT_TYPES),
  name: z
    .string()
    .max(LIMITS.maxNameLength)
    .regex(EVENT_NAME_PATTERN, 'expected a dotted lower-case name like "product.viewed"'),
  timestamp: z.iso.datetime({ offset: true }),
  anonymousId: idString,
  userId: idString.optional(),
  /**
   * Made by the site's backend with its identity secret, hex in either case (.NET and Java
   * print upper case): HMAC-SHA256 of the userId, or, expiring, `<expiry>.<hex>` with the
   * HMAC-SHA256 of `<expiry>.<userId>` (`<expiry>` a Unix time in seconds). Which form a
   * site takes, and whether it verifies, is the Worker's to say.
   */
  userIdSignature: z
    .string()
    .regex(
      /^(\d{1,12}\.)?[0-9a-fA-F]{64}$/,
      'expected a 64-digit hex HMAC-SHA256 signature of the userId, or an expiring one: <expiry>.<64 hex digits>',
    )
    .optional(),
  sessionId: idString.optional(),
  context: EventContextSchema.optional(),
  properties: jsonMap.optional(),
  traits: jsonMap.optional(),
  schemaVersion: z.literal(SCHEMA_VERSION),
});

export type CustomerAction = z.infer<typeof CustomerActionSchema> & {
  properties?: Record<string, JsonValue>;
  traits?: Record<string, JsonValue>;
};
export type EventContext = z.infer<typeof EventContextSchema>;

export type EventValidation = { ok: true; event: CustomerAction } | { ok: false; errors: FieldError[] };

export interface ValidateOptions {
  /** Server time for the timestamp window; defaults to Date.now(). */
  now?: number;
  /**
   * When the sender says it sent the event, on its own clock (a batch's `sentAt`), in ms.
   * The window is then read on the sender's clock: the Worker moves the time by the same
   * skew, so a device whose clock is days off loses nothing and gets its true time.
   */
  sentAt?: number;
  /** Prefix for error paths, e.g. ['batch', 3]. */
  path?: readonly PropertyKey[];
  /** Bytes of this event as received, when the caller already knows them. */
  bytes?: number;
  /**
   * The Segment API's receive time: a Segment message without a time gets it (and an id
   * from its messageId, person and `scope` only). Unset elsewhere, where an event must
   * carry its own time.
   */
  receivedAt?: number;
  /**
   * Who sent it (the site's id): the id made from a Segment messageId is derived from this
   * too (with `receivedAt`, for a message without a time, from its person as well), so two
   * sites' (or people's) `order-1001` stay two events.
   */
  scope?: string;
}

const encoder = new TextEncoder();

const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;
const twoDigits = (s: string, i: number): number => digit(s, i) * 10 + digit(s, i + 1);

/**
 * Milliseconds since the epoch of a timestamp that already matched the ISO 8601 pattern
 * (YYYY-MM-DDTHH:mm:ss[.fraction](Z|±HH:mm)): read by position, several times cheaper
 * than Date.parse on every event. Same result as Date.parse (fractions past ms truncate).
 */
export function instantOf(timestamp: string): number {
  const s = timestamp;
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46 /* . */) {
    i++;
    let scale = 100;
    while (i < s.length) {
      const d = digit(s, i);
      if (d < 0 || d > 9) break;
      ms += d * scale;
      scale /= 10;
      i++;
    }
    ms = Math.floor(ms);
  }
  let offsetMinutes = 0;
  const sign = s.charCodeAt(i);
  if (sign === 43 /* + */ || sign === 45 /* - */) {
    offsetMinutes = (twoDigits(s, i + 1) * 60 + twoDigits(s, i + 4)) * (sign === 43 ? 1 : -1);
  } else if (sign !== 90 /* Z */) {
    return Date.parse(s); // not the shape validated above; let the platform decide
  }
  const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + twoDigits(s, 2);
  if (year < 100) return Date.parse(s); // Date.UTC reads years 0-99 as 1900-1999
  return (
    Date.UTC(
      year,
      twoDigits(s, 5) - 1,
      twoDigits(s, 8),
      twoDigits(s, 11),
      twoDigits(s, 14),
      twoDigits(s, 17),
      ms,
    ) -
    offsetMinutes * 60_000
  );
}

/** The fields checked as free-form JSON maps (context too: it is open to extra keys). */
const JSON_MAP_FIELDS = ['properties', 'traits', 'context'] as const;

/** Compiled on first use, so importing the package stays cheap. */
let envelopeAcceptor: ((value: unknown) => boolean) | undefined;
function acceptsEnvelope(candidate: unknown): boolean {
  envelopeAcceptor ??= fastAcceptor(CustomerActionSchema);
  return envelopeAcceptor(candidate);
}

/** Envelope fields that hold strings; with field names and punctuation, all else is small. */
const ENVELOPE_STRINGS = [
  'id',
  'type',
  'name',
  'timestamp',
  'anonymousId',
  'userId',
  'userIdSignature',
  'sessionId',
];

/** An upper bound of the bytes of the envelope without its maps (at most 6 bytes per character in JSON). */
function envelopeBytesBound(event: Record<string, unknown>): number {
  let n = 512;
  for (const field of ENVELOPE_STRINGS) {
    const value = event[field];
    if (typeof value === 'string') n += 6 * value.length;
  }
  return n;
}

/** The UTF-8 byte length of a value serialized as JSON. */
export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).byteLength;
}

/** The bytes one entry adds to an object's JSON: key, colon, value and a comma (at most one too many). */
export function jsonEntryBytes(key: string, value: unknown): number {
  return jsonBytes(key) + jsonBytes(value) + 2;
}

function jsonIssuesToErrors(issues: JsonIssue[], prefix: readonly PropertyKey[]): FieldError[] {
  return issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message }));
}

/**
 * Validates one event of any supported schema version and returns it as v1, or the
 * list of what is wrong with it. Never throws on any input.
 */
export function validateEvent(input: unknown, options: ValidateOptions = {}): EventValidation {
  const prefix = options.path ?? [];
  try {
    const up = upcast(input, { receivedAt: options.receivedAt, scope: options.scope });
    if (!up.ok)
      return {
        ok: false,
        errors: up.errors.map((e) => ({
          ...e,
          path: [formatPath(prefix), e.path].filter(Boolean).join('.'),
        })),
      };
    const candidate = up.value as Record<string, unknown>;

    // Free-form maps first, on the raw input: limits, finite numbers, forbidden keys.
    const jsonIssues: JsonIssue[] = [];
    let mapBytesBound = 0;
    for (const field of JSON_MAP_FIELDS) {
      if (candidate[field] !== undefined)
        mapBytesBound += checkJsonMapBytes(candidate[field], jsonIssues, [field]);
    }
    if (jsonIssues.length > 0) return { ok: false, errors: jsonIssuesToErrors(jsonIssues, prefix) };

    // Fast accept, slow explain: a valid event skips the zod parse (same verdict, see
    // fast-accept.ts); anything else goes through zod for the readable errors.
    let event: CustomerAction;
    if (acceptsEnvelope(candidate)) {
      event = { ...candidate } as CustomerAction;
    } else {
      const parsed = CustomerActionSchema.safeParse(candidate, { error: issueMessage });
      if (!parsed.success)
        return { ok: false, errors: fieldErrorsFromZod(parsed.error.issues, candidate, prefix) };
      event = parsed.data as CustomerAction;
    }

    const errors: FieldError[] = [];
    const propsSchema = propertiesSchemaFor(event.name);
    const properties = event.properties ?? {};
    if (propsSchema && !fastAcceptor(propsSchema)(properties)) {
      const props = propsSchema.safeParse(properties, { error: issueMessage });
      if (!props.success)
        errors.push(...fieldErrorsFromZod(props.error.issues, properties, [...prefix, 'properties']));
    }
    if (event.type === 'consent' && event.name !== 'consent.updated') {
      errors.push({
        path: formatPath([...prefix, 'name']),
        message: 'consent events must be named "consent.updated"',
      });
    }
    if (event.type === 'page' && event.name !== 'page.viewed') {
      errors.push({
        path: formatPath([...prefix, 'name']),
        message: 'page events must be named "page.viewed"',
      });
    }
    if (event.userIdSignature !== undefined && event.userId === undefined) {
      errors.push({
        path: formatPath([...prefix, 'userIdSignature']),
        message: 'a signature needs the userId it signs',
      });
    }

    const sent = options.sentAt;
    const clock = sent ?? options.now ?? Date.now();
    const at = instantOf(event.timestamp);
    if (at > clock + LIMITS.maxFutureSkewMs) {
      errors.push({
        path: formatPath([...prefix, 'timestamp']),
        message:
          sent === undefined
            ? `timestamp ${event.timestamp} is more than 24 hours in the future; check the device clock`
            : `timestamp ${event.timestamp} is more than 24 hours after the sentAt it was sent with (${new Date(sent).toISOString()}); stamp both from one clock`,
      });
    } else if (at < clock - LIMITS.maxEventAgeMs) {
      errors.push({
        path: formatPath([...prefix, 'timestamp']),
        message:
          sent === undefined
            ? `timestamp ${event.timestamp} is more than 30 days old`
            : `timestamp ${event.timestamp} is more than 30 days before the sentAt it was sent with (${new Date(sent).toISOString()})`,
      });
    }

    // Counted only when the bound says the event could be near the limit, and then
    // counted, not serialized: the event is known to be plain JSON by now.
    const bytes =
      options.bytes ??
      (mapBytesBound + envelopeBytesBound(event) <= LIMITS.maxEventBytes ? 0 : jsonByteLength(event));
    if (bytes > LIMITS.maxEventBytes) {
      errors.push({
        path: formatPath(prefix),
        message: `event too large: ${bytes} bytes, at most ${LIMITS.maxEventBytes}`,
      });
    }
    return errors.length > 0 ? { ok: false, errors } : { ok: true, event };
  } catch (err) {
    // Validation must never throw past the API (e.g. a getter that throws, a cyclic object).
    return {
      ok: false,
      errors: [
        {
          path: formatPath(prefix),
          message: `unreadable event: ${err instanceof Error ? err.message : 'unknown error'}`,
        },
      ],
    };
  }
}
