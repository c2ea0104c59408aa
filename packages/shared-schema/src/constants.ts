/**
 * Attune's shared constants and types, with no runtime dependency: the browser SDK
 * imports this entry so that zod never reaches the browser bundle. Every limit,
 * category and name that two parts of Attune must agree on is defined here once.
 */

/** The schema version every producer should send; older versions are upcast, never rejected. */
export const SCHEMA_VERSION = 1 as const;

/** Hard limits on what the wire accepts. Producers should batch well below them. */
export const LIMITS = {
  /** Events in one collect request. */
  maxBatchEvents: 100,
  /** Bytes of one event, serialized as JSON (UTF-8). */
  maxEventBytes: 32 * 1024,
  /** Bytes of one collect request body. */
  maxBatchBytes: 512 * 1024,
  /** Bytes a browser batch should stay under so it fits a keepalive request / beacon (64 KB quota). */
  browserBatchBytes: 48 * 1024,
  /** Nesting depth of `properties` / `traits` (a flat map is depth 1). */
  maxPropertyDepth: 5,
  /** Keys in one `properties` / `traits` object, counting nested objects. */
  maxPropertyKeys: 200,
  /** Items in one array inside `properties` / `traits`. */
  maxArrayItems: 100,
  /** Characters of a property string value. */
  maxStringLength: 4096,
  /** Characters of a property key. */
  maxKeyLength: 128,
  /** Characters of an event name. */
  maxNameLength: 100,
  /** Characters of anonymousId, userId, sessionId. */
  maxIdLength: 128,
  /** Characters of a URL (page url, referrer). */
  maxUrlLength: 2048,
  /** How far in the future a client timestamp may be before it is rejected (clock skew). */
  maxFutureSkewMs: 24 * 60 * 60 * 1000,
  /** How old an event may be (offline queues can hold events for days). */
  maxEventAgeMs: 30 * 24 * 60 * 60 * 1000,
} as const;

/**
 * Cuts text to `max` UTF-16 units (a limit of LIMITS), never inside a character made of two:
 * half of one is not valid text, and the wire refuses it.
 */
export const clipText = (text: string, max: number): string =>
  text.slice(0, max).replace(/[\ud800-\udbff]$/, '');

/** The kinds of event in the envelope. */
export const EVENT_TYPES = ['page', 'track', 'identify', 'consent'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Event names with typed properties in the registry; other dotted lower-case names are free-form. */
export const KNOWN_EVENT_NAMES = [
  'page.viewed',
  'product.viewed',
  'product.list_viewed',
  'search.performed',
  'cart.item.added',
  'cart.item.removed',
  'checkout.started',
  'order.completed',
  'order.refunded',
  'user.signed_in',
  'form.submitted',
  'consent.updated',
  'decision.served',
  'promo.offered',
] as const;
export type KnownEventName = (typeof KNOWN_EVENT_NAMES)[number];

/**
 * Names of the events the Worker makes itself (interest shifts, triggered recommendations,
 * promotions, served decisions). They reach the event log, but the Worker's ingest refuses
 * an event a producer sends under one of them: a name found in the log says who made it.
 */
export const EDGE_EVENT_NAMES = [
  'interest.shifted',
  'recommendation.triggered',
  'promo.offered',
  'decision.served',
] as const;
export type EdgeEventName = (typeof EDGE_EVENT_NAMES)[number];

/** Dotted lower-case event names: `product.viewed`, `cart.item.added`. */
export const EVENT_NAME_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** Slot names (`data-attune-slot`, decide's `slots`): lower-case, short, safe in HTML attributes and URLs. */
export const SLOT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Consent category keys: `analytics`, `newsletter_2`. */
export const CONSENT_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The `orders` statuses (lower-cased) that make an order a purchase, sent to the edge as
 * `order.completed`: Directus's order Flows and the Worker's order catch-up read them alike.
 * An order with no status is one too (a backend that records paid orders only).
 */
export const PURCHASE_ORDER_STATUSES: readonly string[] = ['paid', 'completed'];

/** A trigger rule's promo code prefix (`TRAIL10`): codes are `<prefix>-<8 characters>`, capitals and digits. */
export const PROMO_CODE_PREFIX_PATTERN = /^[A-Z0-9]{1,16}$/;

/** Crockford base32 ULID: 48-bit time + 80 bits of randomness, 26 characters. */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/**
 * The segments every profile is evaluated for, without configuration; a site adds its own
 * (`settings.segments`, rules on counters). Slot content targets them by these names.
 */
export const BUILT_IN_SEGMENTS = {
  newVisitor: 'new_visitor',
  cartAbandoner: 'cart_abandoner',
  frequentBrowserRareBuyer: 'frequent_browser_rare_buyer',
  highValue: 'high_value',
} as const;

/** The built-in consent categories. Marketers may add, rename or disable others in Directus. */
export const CONSENT_CATEGORIES = ['necessary', 'analytics', 'personalization', 'marketing'] as const;
export type BuiltInConsentCategory = (typeof CONSENT_CATEGORIES)[number];

/** A purpose a sink serves; an event reaches a sink only when its purpose is granted. */
export type Purpose = Exclude<BuiltInConsentCategory, 'necessary'>;
export const PURPOSES = ['analytics', 'personalization', 'marketing'] as const satisfies readonly Purpose[];

/** Each sink and the purpose that must be granted for it to receive an event. */
export const SINK_PURPOSE = {
  /** Queue → Directus events collection. */
  eventLog: 'analytics',
  /** ProfileDO: interests, segments, recent actions. */
  profile: 'personalization',
  /** Personalized decisions (scorer, decide, edge rewriting). */
  decisions: 'personalization',
  /** Promotions, discount triggers, marketing audiences. */
  promotions: 'marketing',
} as const satisfies Record<string, Purpose>;
export type Sink = keyof typeof SINK_PURPOSE;

/** Granting any of these lets the SDK write to cookies, localStorage or IndexedDB. */
export const STORAGE_PURPOSES = PURPOSES;

/** Defaults before a person chooses: only what is strictly necessary. */
export const DEFAULT_CONSENT_CATEGORIES: Readonly<Record<BuiltInConsentCategory, boolean>> = {
  necessary: true,
  analytics: false,
  personalization: false,
  marketing: false,
};

/** The policy version used until a site's configuration names another. */
export const DEFAULT_POLICY_VERSION = '1';

/** A person's consent as it travels on events (`context.consent`) and in records. */
export interface ConsentState {
  categories: Record<string, boolean>;
  policyVersion: string;
}

/** A consent category as marketers manage it in Directus and `/v1/config` serves it. */
export interface ConsentCategoryConfig {
  key: string;
  label: string;
  description: string;
  /** Required categories (necessary) cannot be turned off. */
  required: boolean;
  /** Disabled categories are not offered and never granted. */
  enabled: boolean;
  /** Pre-selected in the banner (never means granted without a choice). */
  default: boolean;
}

/** Wire paths, relative to the Worker's origin (edge-proxy mode serves them under /attune). */
export const PATHS = {
  collect: '/v1/collect',
  decide: '/v1/decide',
  config: '/v1/config',
  firstPartyPrefix: '/attune',
} as const;

/** Status codes of the collect endpoint, as DESIGN's wire protocol defines them. */
export const COLLECT_STATUS = {
  /** Every event accepted. */
  ok: 200,
  /** Some events accepted, the others reported by index (body lists them). */
  partial: 207,
  /** Unreadable body or invalid envelope. */
  badRequest: 400,
  /** Unknown write key or bad secret key. */
  unauthorized: 401,
  /** Origin not allowed for this write key. */
  forbidden: 403,
  /** Body or batch too large. */
  tooLarge: 413,
  /** Rate limited; honour Retry-After. */
  tooManyRequests: 429,
} as const;

/** Status codes a browser should retry (with backoff); other 4xx are final. */
export const RETRYABLE_STATUS: readonly number[] = [408, 429, 500, 502, 503, 504];

/** Signal strength of an action for interest scoring: view < cart add < purchase. */
export const SIGNAL_WEIGHT = {
  'page.viewed': 0.5,
  'product.list_viewed': 0.5,
  'product.viewed': 1,
  'search.performed': 1,
  'cart.item.added': 3,
  'checkout.started': 3,
  'order.completed': 5,
} as const satisfies Partial<Record<KnownEventName, number>>;

export type { ConsentConfig } from './consent.ts';
export type { DecideResponse, ProductCard, SlotDecision } from './decide.ts';
export type { CustomerAction, EventContext, FieldError, JsonValue } from './event.ts';
export type {
  ConsentMessage,
  ErasureMessage,
  ErasureReason,
  EventMessage,
  ProfileMessage,
  QueueMessage,
} from './queue.ts';
export type { CollectRequest, CollectResponse, ErrorBody, EventError } from './wire.ts';
