/**
 * Schema versions and upcasters. An event in an older shape is upcast step by step to
 * the current version, never rejected for being old. Version 0 is the Segment-spec shape
 * (`messageId`, `event: "Product Viewed"`, snake_case properties) that existing
 * producers and Segment server libraries send; the HTTP Tracking API reuses it.
 */
import { clipText, LIMITS, SCHEMA_VERSION } from './constants.ts';
import { describeValue } from './json.ts';
import { ulidOf } from './ulid.ts';

export interface UpcastError {
  path: string;
  message: string;
}
export type Upcast = { ok: true; value: unknown } | { ok: false; errors: UpcastError[] };

export interface UpcastOptions {
  /**
   * Server receive time (ms) for a Segment message that carries no `timestamp` nor
   * `originalTimestamp`: Segment libraries may leave the time to the server. Without it
   * such a message is rejected for its missing timestamp.
   */
  receivedAt?: number;
  /** The sending site's id: part of the id made from a Segment messageId (see ValidateOptions.scope). */
  scope?: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Segment e-commerce spec names → Attune names. Other names are dotted from their words. */
export const SEGMENT_EVENT_NAMES: Readonly<Record<string, string>> = {
  'Product Viewed': 'product.viewed',
  'Product List Viewed': 'product.list_viewed',
  'Product List Filtered': 'product.list_viewed',
  'Products Searched': 'search.performed',
  'Product Added': 'cart.item.added',
  'Product Removed': 'cart.item.removed',
  'Checkout Started': 'checkout.started',
  'Order Completed': 'order.completed',
  'Order Refunded': 'order.refunded',
  'Signed In': 'user.signed_in',
  'Form Submitted': 'form.submitted',
};

/**
 * Segment snake_case property keys → Attune camelCase keys. Every one of them names an
 * id, which Attune reads as a string: producers such as Shopify send numeric ids.
 */
const SEGMENT_PROPERTY_KEYS: Readonly<Record<string, string>> = {
  product_id: 'productId',
  order_id: 'orderId',
  refund_id: 'refundId',
  cart_id: 'cartId',
  list_id: 'listId',
  image_url: 'imageUrl',
  checkout_id: 'checkoutId',
};

/** "Video Playback Started" → "video.playback.started"; single words get a `track.` prefix. */
export function dottedName(segmentName: string): string {
  // hasOwn: "constructor" or "toString" are event names here, not Object.prototype members.
  const known = Object.hasOwn(SEGMENT_EVENT_NAMES, segmentName)
    ? SEGMENT_EVENT_NAMES[segmentName]
    : undefined;
  if (known) return known;
  const words = segmentName
    .toLowerCase()
    .replace(/[^a-z0-9_ .-]+/g, ' ')
    .split(/[\s.-]+/)
    .filter(Boolean)
    .map((w) => (/^[a-z]/.test(w) ? w : `n${w}`));
  if (words.length === 0) return 'track.unnamed';
  return words.length === 1 ? `track.${words[0]}` : words.join('.');
}

const ID_KEYS: ReadonlySet<string> = new Set(Object.values(SEGMENT_PROPERTY_KEYS));

function renameKeys(props: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(props)) {
    const name = Object.hasOwn(SEGMENT_PROPERTY_KEYS, key) ? (SEGMENT_PROPERTY_KEYS[key] ?? key) : key;
    if (key === 'products' && Array.isArray(value)) {
      out[name] = value.map((p) => (isObject(p) ? renameKeys(p) : p));
    } else if (ID_KEYS.has(name) && Number.isSafeInteger(value)) {
      // Numeric ids (Shopify's product_id, order_id) are the same ids written as numbers. Only
      // exact ones: past 2^53 JSON has already rounded them, and two ids would become one (a
      // number that is no integer is no id either); those stay numbers, and are refused.
      out[name] = String(value);
    } else if (key === 'currency' && typeof value === 'string' && /^[a-z]{3}$/i.test(value)) {
      // Segment's own examples send "usd"; ISO 4217 codes are upper-case.
      out[name] = value.toUpperCase();
    } else {
      // defineProperty, not assignment: an own "__proto__" key stays a key (and is then rejected).
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** FNV-1a over a string with a seed: a cheap, deterministic 32-bit hash. */
function fnv1a(input: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * A ULID derived from a message id and time: the same Segment messageId always maps to
 * the same ULID, so a producer's retries stay idempotent after upcasting. The time must
 * be the producer's (it is sent again with every retry); a message whose time the server
 * fills passes 0 (and its site and person with the messageId, see upcastSegment).
 */
export function ulidFromMessageId(messageId: string, timeMs: number): string {
  const digits: number[] = [];
  for (let i = 0; i < 4; i++) {
    let h = fnv1a(messageId, i * 0x9e3779b1);
    // 4 hashes × 4 digits (20 bits each) = 16 digits = 80 bits of randomness.
    for (let j = 0; j < 4; j++) {
      digits.push(h & 31);
      h >>>= 5;
    }
  }
  return ulidOf(Math.max(0, Math.min(Math.floor(timeMs), 2 ** 48 - 1)), digits);
}

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/**
 * The stand-in browser id of a server message that names only its user: `server:<userId>`,
 * cut to the id limit (never inside a character of two UTF-16 units). A user id the limit
 * allows must not get its message refused for an anonymousId its sender never sent; the
 * person is found by the user id, and two long ids sharing the kept part share only this
 * stand-in, which is never linked to anyone (the `server:` prefix).
 */
function serverBrowserId(userId: string): string {
  return clipText(`server:${userId}`, LIMITS.maxIdLength);
}

/** Whether a Segment message leaves its time to the server (it has no `timestamp` nor `originalTimestamp`). */
export function leavesTimeToServer(message: Readonly<Record<string, unknown>>): boolean {
  // null as absent, as Segment's API takes it.
  return message.timestamp == null && message.originalTimestamp == null;
}

const URL_CHARS = LIMITS.maxUrlLength;

/** `object` with its string fields named in `limits` cut to their length (never inside a character). */
function clipped(object: Json, limits: Readonly<Record<string, number>>): Json {
  const out: Json = { ...object };
  for (const [key, max] of Object.entries(limits)) {
    const value = out[key];
    if (typeof value === 'string') out[key] = clipText(value, max);
  }
  return out;
}

/** v0 (Segment spec) → v1. */
function upcastSegment(input: Json, options: UpcastOptions): Upcast {
  const type = input.type;
  const messageId = input.messageId;
  if (typeof messageId !== 'string' || messageId.length === 0 || messageId.length > 128) {
    return {
      ok: false,
      errors: [
        { path: 'messageId', message: `expected a non-empty string, received ${describeValue(messageId)}` },
      ],
    };
  }
  const stamp =
    typeof input.timestamp === 'string'
      ? input.timestamp
      : typeof input.originalTimestamp === 'string'
        ? input.originalTimestamp
        : undefined;
  const timeMs = stamp !== undefined ? Date.parse(stamp) : Number.NaN;
  // The server's time differs on every retry of the message, so it never enters the id.
  const serverTimed = leavesTimeToServer(input) && options.receivedAt !== undefined;
  const timestamp = serverTimed
    ? new Date(options.receivedAt ?? 0).toISOString()
    : Number.isFinite(timeMs)
      ? new Date(timeMs).toISOString()
      : stamp;
  if (typeof input.userId === 'number' && !Number.isSafeInteger(input.userId))
    return {
      ok: false,
      errors: [
        {
          path: 'userId',
          // Trusted without a signature on the Segment routes: a rounded id would be someone else.
          message: `expected a string, or an integer up to 2^53, received ${describeValue(input.userId)}: larger numbers lose their exact value in JSON (two users would become one); send ids as strings`,
        },
      ],
    };
  const userId =
    typeof input.userId === 'string' || typeof input.userId === 'number' ? String(input.userId) : undefined;
  const anonymousId =
    typeof input.anonymousId === 'string'
      ? input.anonymousId
      : userId !== undefined
        ? serverBrowserId(userId)
        : input.anonymousId;

  let name: unknown;
  let eventType: 'track' | 'page' | 'identify';
  let properties: Json = isObject(input.properties) ? renameKeys(input.properties) : {};
  switch (type) {
    case 'track':
      eventType = 'track';
      name = typeof input.event === 'string' ? dottedName(input.event) : input.event;
      // Segment's Order Completed has every property optional, and many producers send
      // only `revenue`; Attune's order.completed needs `total`.
      if (
        name === 'order.completed' &&
        properties.total === undefined &&
        typeof properties.revenue === 'number'
      )
        properties = { ...properties, total: properties.revenue };
      break;
    case 'page':
    case 'screen':
      eventType = 'page';
      name = 'page.viewed';
      // The page's own name and category (Segment's page(category, name)): the category
      // teaches category interest, as a browser page view's properties.category does.
      if (typeof input.name === 'string') {
        if (properties.title === undefined) properties = { ...properties, title: clipText(input.name, 512) };
        if (properties.name === undefined) properties = { ...properties, name: input.name };
      }
      if (typeof input.category === 'string' && properties.category === undefined)
        properties = { ...properties, category: input.category };
      break;
    case 'identify':
      eventType = 'identify';
      name = 'user.identified';
      break;
    default:
      return {
        ok: false,
        errors: [
          {
            path: 'type',
            message: `Segment "${String(type)}" calls are not supported; send track, page, screen or identify`,
          },
        ],
      };
  }

  const ctx = isObject(input.context) ? input.context : {};
  const context: Json = {};
  for (const key of ['page', 'locale', 'timezone', 'screen', 'campaign', 'library'] as const) {
    if (ctx[key] !== undefined) context[key] = ctx[key];
  }
  // Where the page was, cut to what the wire takes, as the browser SDK cuts it: a long URL
  // or title describes the page, and must not get the whole message refused.
  if (isObject(ctx.page))
    context.page = clipped(ctx.page, {
      url: URL_CHARS,
      path: URL_CHARS,
      referrer: URL_CHARS,
      search: URL_CHARS,
      title: 256,
    });
  if (isObject(ctx.campaign))
    context.campaign = clipped(ctx.campaign, {
      source: 256,
      medium: 256,
      name: 256,
      term: 256,
      content: 256,
    });
  // context.ip and context.userAgent are deliberately not carried: the Worker derives
  // what it needs from the request and stores neither.

  const v1: Json = {
    // Timed on arrival, a message's id has no time of the producer's to tell two sites' or
    // two people's `order-1001` apart (the event log keys on the id): they are part of it.
    // With the producer's time, the site is part of it too: two shops' `order-1001` sent
    // in the same second were one id, and the second shop's event was skipped in the log.
    id: ULID.test(messageId)
      ? messageId
      : serverTimed
        ? ulidFromMessageId(
            `${options.scope ?? ''}\n${userId ?? ''}\n${String(anonymousId)}\n${messageId}`,
            0,
          )
        : ulidFromMessageId(
            options.scope === undefined ? messageId : `${options.scope}\n${messageId}`,
            Number.isFinite(timeMs) ? timeMs : 0,
          ),
    type: eventType,
    name,
    timestamp,
    anonymousId,
    context,
    properties,
    schemaVersion: 1,
  };
  if (userId !== undefined) v1.userId = userId;
  if (eventType === 'identify' && isObject(input.traits)) v1.traits = input.traits;
  return { ok: true, value: v1 };
}

/** Upcasters by the version they read; each returns the next version's shape. */
const UPCASTERS: Readonly<Record<number, (input: Json, options: UpcastOptions) => Upcast>> = {
  0: upcastSegment,
};

/** The schema version of an input: explicit, or 0 for a Segment-shaped object. */
export function detectVersion(input: Json): number | undefined {
  if (typeof input.schemaVersion === 'number') return input.schemaVersion;
  // Any messageId marks a Segment message: one of the wrong type is then named as the error.
  if (input.schemaVersion === undefined && input.messageId != null) return 0;
  return undefined;
}

/** Upcasts any supported version to the current one. Never throws. */
export function upcast(input: unknown, options: UpcastOptions = {}): Upcast {
  if (!isObject(input))
    return {
      ok: false,
      errors: [{ path: '', message: `expected an event object, received ${describeValue(input)}` }],
    };
  let version = detectVersion(input);
  if (version === undefined) {
    return {
      ok: false,
      errors: [{ path: 'schemaVersion', message: `required: expected ${SCHEMA_VERSION}` }],
    };
  }
  if (!Number.isInteger(version) || version > SCHEMA_VERSION || version < 0) {
    return {
      ok: false,
      errors: [
        {
          path: 'schemaVersion',
          message: `unsupported schema version ${String(version)}; this server reads versions 0 to ${SCHEMA_VERSION}`,
        },
      ],
    };
  }
  let value: Json = input;
  while (version < SCHEMA_VERSION) {
    const step = UPCASTERS[version];
    if (!step)
      return {
        ok: false,
        errors: [{ path: 'schemaVersion', message: `no upcaster from version ${version}` }],
      };
    const result = step(value, options);
    if (!result.ok) return result;
    if (!isObject(result.value))
      return { ok: false, errors: [{ path: '', message: 'upcaster returned a non-object' }] };
    value = result.value;
    version++;
  }
  return { ok: true, value };
}
