/**
 * fast-check generators of valid CustomerAction events and collect bodies, for the
 * property tests. Test-only: nothing in the package's entry points imports this file.
 * Each generator stays inside LIMITS by construction, so a failure means the validator
 * rejected something the contract allows (or changed it on the way through).
 */
import fc from 'fast-check';
import { KNOWN_EVENT_NAMES, LIMITS } from './constants.ts';
import type { CustomerAction } from './event.ts';
import type { JsonValue } from './json.ts';

/** The server clock of every generated event. */
export const NOW = Date.parse('2026-11-26T12:00:00.000Z');

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Any well-formed Unicode text (full code points, never a lone surrogate). */
export const text = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength, maxLength });

const key = text(24).filter((k) => !FORBIDDEN.has(k));
const id = text(40, 1);
const finiteDouble = fc
  .double({ noNaN: true, noDefaultInfinity: true })
  // JSON writes -0 as 0, so -0 cannot round-trip; it is not a value a producer means.
  .filter((n) => !Object.is(n, -0));

const jsonLeaf: fc.Arbitrary<JsonValue> = fc.oneof(
  text(30),
  fc.integer(),
  finiteDouble,
  fc.boolean(),
  fc.constant(null),
);

/** A free-form JSON value nested at most `containers` levels below the map holding it. */
function jsonValue(containers: number): fc.Arbitrary<JsonValue> {
  if (containers === 0) return jsonLeaf;
  const inner = jsonValue(containers - 1);
  return fc.oneof(
    { weight: 3, arbitrary: jsonLeaf },
    { weight: 1, arbitrary: fc.array(inner, { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(key, inner, { maxKeys: 4, noNullPrototype: true }) },
  );
}

/** Keys in a JSON map, counting nested objects (as LIMITS.maxPropertyKeys counts them). */
export function countKeys(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + countKeys(v), 0);
  if (value !== null && typeof value === 'object')
    return Object.values(value).reduce((n: number, v) => n + 1 + countKeys(v), 0);
  return 0;
}

/** A free `properties` / `traits` map within the depth and key limits. */
export const jsonMap: fc.Arbitrary<Record<string, JsonValue>> = fc
  .dictionary(key, jsonValue(LIMITS.maxPropertyDepth - 2), { maxKeys: 6, noNullPrototype: true })
  .filter((m) => countKeys(m) <= LIMITS.maxPropertyKeys);

const cents = fc.integer({ min: 0, max: 10_000_000 }).map((c) => c / 100);
const currency = fc.constantFrom('EUR', 'USD', 'GBP', 'SEK');

const productRef = fc.record(
  {
    productId: id,
    sku: id,
    name: text(80),
    category: text(40),
    tags: fc.array(text(64), { maxLength: 5 }),
    price: cents,
    currency,
    quantity: fc.integer({ min: 1, max: 99 }),
    position: fc.nat(200),
  },
  { requiredKeys: ['productId'], noNullPrototype: true },
);
const products = fc.array(productRef, { maxLength: 4 });

/** Extra properties a producer may add to a known event (known schemas keep them). */
const extras = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 10 }).map((k) => `x_${k}`),
  jsonValue(2),
  { maxKeys: 3, noNullPrototype: true },
);

const isoInstant = (min: number, max: number): fc.Arbitrary<string> =>
  fc.tuple(fc.integer({ min, max }), fc.constantFrom(0, 60, -300, 330, 840)).map(([ms, offsetMinutes]) => {
    if (offsetMinutes === 0) return new Date(ms).toISOString();
    const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, -1);
    const sign = offsetMinutes < 0 ? '-' : '+';
    const abs = Math.abs(offsetMinutes);
    const hh = String(Math.floor(abs / 60)).padStart(2, '0');
    const mm = String(abs % 60).padStart(2, '0');
    return `${local}${sign}${hh}:${mm}`;
  });

/** A client timestamp inside the accepted window around NOW. */
export const timestamp = isoInstant(
  NOW - LIMITS.maxEventAgeMs + 60_000,
  NOW + LIMITS.maxFutureSkewMs - 60_000,
);

const consentCategories = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/).filter((k) => !FORBIDDEN.has(k)),
  fc.boolean(),
  { minKeys: 1, maxKeys: 5, noNullPrototype: true },
);
const consentState = fc.record(
  { categories: consentCategories, policyVersion: text(20, 1) },
  { noNullPrototype: true },
);

/** Typed properties for each known event name. */
export const KNOWN_PROPERTIES: { [N in (typeof KNOWN_EVENT_NAMES)[number]]: fc.Arbitrary<object> } = {
  'page.viewed': fc.record(
    { path: text(200), title: text(100) },
    { requiredKeys: [], noNullPrototype: true },
  ),
  'product.viewed': productRef,
  'product.list_viewed': fc.record(
    { listId: id, category: text(40), products },
    { requiredKeys: [], noNullPrototype: true },
  ),
  'search.performed': fc.record(
    { query: text(256), results: fc.nat(10_000) },
    { requiredKeys: ['query'], noNullPrototype: true },
  ),
  'cart.item.added': productRef,
  'cart.item.removed': productRef,
  'checkout.started': fc.record(
    { cartId: id, value: cents, currency, products },
    { requiredKeys: [], noNullPrototype: true },
  ),
  'order.completed': fc.record(
    { orderId: id, total: cents, currency, discount: cents, coupon: text(64), products },
    { requiredKeys: ['orderId', 'total'], noNullPrototype: true },
  ),
  'order.refunded': fc.record(
    {
      orderId: id,
      refundId: id,
      total: cents,
      currency,
      products,
      reason: fc.oneof(fc.constantFrom('cancelled', 'refunded', 'returned'), text(64)),
    },
    { requiredKeys: ['orderId'], noNullPrototype: true },
  ),
  'user.signed_in': fc.record(
    { method: fc.constantFrom('password', 'google', 'magic_link') },
    { requiredKeys: [], noNullPrototype: true },
  ),
  'form.submitted': fc.record(
    { formId: id, fields: fc.array(text(128), { maxLength: 6 }) },
    { requiredKeys: ['formId'], noNullPrototype: true },
  ),
  'consent.updated': fc.record(
    {
      categories: consentCategories,
      policyVersion: text(20, 1),
      source: fc.constantFrom('banner', 'preferences', 'gpc', 'tcf', 'api', 'server'),
    },
    { requiredKeys: ['categories', 'policyVersion'], noNullPrototype: true },
  ),
  'decision.served': fc.record(
    {
      decisionId: id,
      slot: text(64),
      variant: text(128),
      holdout: fc.boolean(),
      experiment: text(64),
      items: fc.array(id, { maxLength: 6 }),
    },
    { requiredKeys: ['decisionId', 'slot', 'variant', 'holdout'], noNullPrototype: true },
  ),
  'promo.offered': fc.record(
    {
      code: text(64),
      rule: id,
      expiresAt: isoInstant(NOW - 86_400_000, NOW + 30 * 86_400_000),
      discountPercent: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 100),
    },
    { requiredKeys: ['code', 'rule', 'expiresAt'], noNullPrototype: true },
  ),
};

const withExtras = (props: fc.Arbitrary<object>): fc.Arbitrary<Record<string, JsonValue>> =>
  fc.tuple(props, extras).map(([p, x]) => ({ ...x, ...p }) as Record<string, JsonValue>);

/** Dotted lower-case names that are not in the registry: free-form properties. */
export const unknownName = fc
  .stringMatching(/^[a-z][a-z0-9_]{0,12}(\.[a-z][a-z0-9_]{0,12}){1,3}$/)
  .filter((n) => !(KNOWN_EVENT_NAMES as readonly string[]).includes(n));

const url = fc.webUrl({ withQueryParameters: true, withFragments: true }).filter((u) => u.length <= 2048);

const context = fc.record(
  {
    page: fc.record(
      { url, path: fc.webPath(), referrer: url, title: text(100), search: fc.webQueryParameters() },
      { requiredKeys: [], noNullPrototype: true },
    ),
    locale: fc.constantFrom('en-US', 'de-DE', 'fr', 'pt-BR'),
    timezone: fc.constantFrom('Europe/Berlin', 'UTC', 'America/Sao_Paulo'),
    screen: fc.record(
      { width: fc.nat(8000), height: fc.nat(8000), density: fc.constantFrom(1, 1.5, 2, 3) },
      { requiredKeys: ['width', 'height'], noNullPrototype: true },
    ),
    campaign: fc.record(
      { source: text(30), medium: text(30), name: text(30), term: text(30), content: text(30) },
      { requiredKeys: [], noNullPrototype: true },
    ),
    library: fc.record(
      { name: fc.constant('@attune/browser-sdk'), version: fc.constantFrom('0.1.0', '1.2.3') },
      { noNullPrototype: true },
    ),
    consent: consentState,
  },
  { requiredKeys: [], noNullPrototype: true },
);

/** type + name + properties (+ traits), coherent with the envelope's rules. */
const body = fc.oneof(
  fc.record({
    type: fc.constant('page' as const),
    name: fc.constant('page.viewed'),
    properties: withExtras(KNOWN_PROPERTIES['page.viewed']),
  }),
  fc.record({
    type: fc.constant('consent' as const),
    name: fc.constant('consent.updated'),
    properties: KNOWN_PROPERTIES['consent.updated'].map((p) => p as Record<string, JsonValue>),
  }),
  fc.constantFrom(...KNOWN_EVENT_NAMES).chain((name) =>
    fc.record({
      type: fc.constant('track' as const),
      name: fc.constant(name),
      properties: withExtras(KNOWN_PROPERTIES[name]),
    }),
  ),
  fc.record(
    { type: fc.constant('track' as const), name: unknownName, properties: jsonMap },
    { requiredKeys: ['type', 'name'], noNullPrototype: true },
  ),
  fc.record(
    {
      type: fc.constant('identify' as const),
      name: fc.oneof(fc.constant('user.identified'), unknownName),
      traits: jsonMap,
      properties: jsonMap,
    },
    { requiredKeys: ['type', 'name'], noNullPrototype: true },
  ),
);

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);

/** Any valid v1 CustomerAction; optional fields are sometimes present, sometimes absent. */
export const customerAction: fc.Arbitrary<CustomerAction> = fc
  .tuple(
    fc.record(
      {
        id: fc.ulid(),
        timestamp,
        anonymousId: id,
        sessionId: id,
        context,
        schemaVersion: fc.constant(1 as const),
      },
      { requiredKeys: ['id', 'timestamp', 'anonymousId', 'schemaVersion'], noNullPrototype: true },
    ),
    fc.option(
      fc.record({ userId: id, userIdSignature: hex64 }, { requiredKeys: ['userId'], noNullPrototype: true }),
      {
        nil: undefined,
      },
    ),
    body,
  )
  .map(([base, user, b]) => ({ ...base, ...user, ...b }) as CustomerAction)
  .filter((e) => new TextEncoder().encode(JSON.stringify(e)).byteLength <= LIMITS.maxEventBytes);

/** A valid collect request body (as an object; stringify it for parseCollectBody). */
export const collectRequest = fc.record(
  {
    writeKey: fc.stringMatching(/^wk_[A-Za-z0-9]{8,32}$/),
    // Stamped by the clock that stamped the batch, read within a minute of NOW: the window
    // is read on this clock, and every generated event time lies inside it.
    sentAt: isoInstant(NOW - 60_000, NOW + 60_000),
    batch: fc.array(customerAction, { minLength: 1, maxLength: 8 }),
  },
  { requiredKeys: ['writeKey', 'batch'], noNullPrototype: true },
);
