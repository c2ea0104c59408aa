/**
 * A person's profile as plain data, and the pure rules that change it: interests with
 * capped increments and exponential decay, the last 100 actions, counters, cart,
 * segments, interest-shift detection, the order of consent choices, and merging an
 * anonymous profile into a person's. Every part a producer can grow (interests, traits,
 * counters, lists) is bounded. ProfileDO stores this state; keeping the rules pure keeps
 * them testable on their own.
 */
import {
  BUILT_IN_SEGMENTS,
  type ConsentState,
  type CustomerAction,
  isGranted,
  type JsonValue,
  jsonEntryBytes,
  KNOWN_EVENT_NAMES,
  LIMITS,
  SIGNAL_WEIGHT,
} from '@attune/shared-schema';
import { hash32 } from '../hash/index.ts';
import { EDGE_EVENT } from './edge-events.ts';
import type { OfferedPromo, PersonKey, ProfileSummary, ProfileView, RecentAction } from './types.ts';
import { newUlid } from './ulid.ts';

/** A consent record with proof: what was chosen, when, under which policy, from where. */
export interface ConsentRecord {
  state: ConsentState;
  /** When the Worker received the choice. */
  recordedAt: string;
  /**
   * When the person made the choice: the consent event's own, server-corrected time. Choices
   * are ordered by it, not by arrival: an offline queue may deliver an older choice after a
   * newer one. Records stored before it was kept have none; their `recordedAt` stands for it.
   */
  chosenAt?: string;
  eventId: string;
  source: string;
  /**
   * Whether Global Privacy Control was in force when the choice was made (gpcOfChoice): why
   * marketing is off, when it is. Records made before it was kept have none: unknown, not
   * false.
   */
  gpc?: boolean;
}

/**
 * Where a consent choice was made, as its proof keeps it (the ProfileDO's record and the
 * queued consent record alike): the event's `source`, at most 64 characters, else `banner`.
 */
export function consentSource(event: CustomerAction): string {
  const source = event.properties?.source;
  return typeof source === 'string' ? source.slice(0, 64) : 'banner';
}

/**
 * Whether Global Privacy Control was in force for a consent choice: `Sec-GPC: 1` on the
 * request that carried it (the edge turned marketing off for it), or a choice its producer
 * says GPC made (source `gpc`). Undefined when neither says so and the request is not known
 * (a replay from the event log, which does not keep the header): unknown, never taken as off.
 */
export function gpcOfChoice(requestGpc: boolean | undefined, source: string): boolean | undefined {
  return requestGpc === true || source === 'gpc' ? true : requestGpc;
}

/** When a record's choice was made (epoch ms; see ConsentRecord.chosenAt). */
export function choiceTime(record: ConsentRecord): number {
  const at = Date.parse(record.chosenAt ?? record.recordedAt);
  return Number.isFinite(at) ? at : Number.NEGATIVE_INFINITY;
}

/**
 * The record in force once a choice is received: the choice itself when it was made at the
 * same time or later than the record (at the same time, the later arrival wins); for an
 * older one, the record less what the older choice withdraws. An older choice's grants never
 * count (an offline device's grant, flushed late, must not undo a withdrawal made since); its
 * withdrawals always do, since a device whose clock is off by more than the day of skew the
 * Worker corrects dates its choices days back, and its withdrawal would otherwise be
 * ignored. Such a narrowed record keeps the record's policy version and choice time, with
 * the older choice's event as its proof. Returns `current` itself when the older choice
 * withdraws nothing: it is proof of what the person chose then, nothing more.
 */
export function consentAfter(received: ConsentRecord, current: ConsentRecord | undefined): ConsentRecord {
  if (current === undefined || choiceTime(received) >= choiceTime(current)) return received;
  const categories: Record<string, boolean> = {};
  let narrowed = false;
  for (const [purpose, granted] of Object.entries(current.state.categories)) {
    const kept = granted && (purpose === 'necessary' || received.state.categories[purpose] === true);
    categories[purpose] = kept;
    if (kept !== granted) narrowed = true;
  }
  if (!narrowed) return current;
  const { gpc: _received, ...proof } = received;
  // The narrowed record holds both choices: GPC was in force for it if it was for either
  // (the record's marketing may be off by the newer one's), unknown if either is not known.
  const gpc =
    received.gpc === true || current.gpc === true
      ? true
      : received.gpc === false && current.gpc === false
        ? false
        : undefined;
  return {
    ...proof,
    state: { ...current.state, categories },
    chosenAt: current.chosenAt ?? current.recordedAt,
    ...(gpc !== undefined && { gpc }),
  };
}

/**
 * An event's own consent claim less what the person's choice in force withdraws, or
 * undefined when that withdraws nothing the claim grants. An event an offline queue
 * flushes late was made under the grant its claim states, but the person has since turned
 * some purpose off (on this device or another): its sinks must follow the withdrawal, or
 * the late product views would teach a profile the person asked to stop. A choice made
 * before the event under the claim's policy version withdraws from it too: a signed-in
 * person who withdrew on one browser is still claimed as granting by the banner of their
 * other browsers, which never saw that choice (before, those browsers' events taught the
 * profile again and reached marketing, under a record saying both were off). A choice made
 * before the event under another policy version is older than the claim's, which answered
 * the version since: the claim stands. A purpose the record does not name is not taken as
 * withdrawn.
 */
export function claimAfterWithdrawals(
  claim: ConsentState,
  record: ConsentRecord | undefined,
  eventAt: number,
): ConsentState | undefined {
  if (record === undefined) return undefined;
  if (choiceTime(record) <= eventAt && record.state.policyVersion !== claim.policyVersion) return undefined;
  const categories = { ...claim.categories };
  let narrowed = false;
  for (const [purpose, granted] of Object.entries(claim.categories)) {
    if (granted && purpose !== 'necessary' && record.state.categories[purpose] === false) {
      categories[purpose] = false;
      narrowed = true;
    }
  }
  return narrowed ? { ...claim, categories } : undefined;
}

/** Whether `a` was chosen strictly later than `b` (of two records held, the one in force). */
export function chosenLater(a: ConsentRecord, b: ConsentRecord | undefined): boolean {
  return b === undefined || choiceTime(a) > choiceTime(b);
}

export interface ProfileState {
  siteId: string;
  personKey: PersonKey;
  anonymousIds: string[];
  userId?: string;
  traits: Record<string, JsonValue>;
  /** Interest scores as of `interestsAsOf` (decay is applied lazily). */
  interests: Record<string, number>;
  interestsAsOf: number;
  counters: Record<string, number>;
  recentActions: RecentAction[];
  cart: string[];
  purchased: string[];
  consent?: ConsentRecord;
  offers: Record<string, number>;
  /** The newest promo a trigger offered (kept past its end until a newer one; shown only before it). */
  promo?: OfferedPromo<number>;
  /** The dominant category and when it was last seen on top, for shift detection. */
  dominant?: { key: string; since: number };
  lastProductView?: { productId: string; at: number };
  /**
   * The "viewed next" pairs this person counted lately, [pair key, when], oldest first, at
   * most MAX_COUNTED_PAIRS: a pair counts once per person per `covisitOncePerMs`.
   */
  covisited?: [string, number][];
  lastCartAddAt?: number;
  /** The latest cart add's own time (lastCartAddAt is the profile's clock): what a late order must not empty. */
  lastCartAddEventAt?: number;
  lastOrderAt?: number;
  /** The latest order's own time (lastOrderAt is the profile's clock, which a later event may have moved on). */
  lastOrderEventAt?: number;
  lastSessionId?: string;
  /**
   * The orders counted lately, oldest first: what an `order.refunded` takes back (see
   * refundOrder). Kept as long as an order's seen-id, within COUNTED_ORDERS_MAX and, in
   * product ids, MAX_LIST (the bound of `purchased`, which they are a part of).
   */
  countedOrders?: CountedOrder[];
  /**
   * Refunds of orders not counted (yet), oldest first: a backend's refund may reach the edge
   * before the order Flow's order (or the order is on a browser not yet merged). Each is
   * taken once, when its order counts (see heldRefundsTaken); kept as long as a counted order,
   * within COUNTED_ORDERS_MAX.
   */
  heldRefunds?: HeldRefund[];
  firstSeen: string;
  lastSeen: string;
  /** Monotonic per person: bumped on every change, so downstream keeps the latest snapshot. */
  version: number;
}

/** An order a profile counted: its id, the revenue it still adds, its products, its own time. */
export interface CountedOrder {
  orderId: string;
  total: number;
  products: string[];
  at: number;
}

/** A refund waiting for its order: the order, the refund's own id and total when sent, its own time. */
export interface HeldRefund {
  orderId: string;
  refundId?: string;
  total?: number;
  at: number;
}

/** Tunables of the profile rules; a site may override them in its settings. */
export interface ProfileRules {
  halfLifeMs: number;
  /** The most one event may add to one interest key. */
  maxIncrement: number;
  /** The most an interest score may reach. */
  maxScore: number;
  /** Scores below this are forgotten. */
  minScore: number;
  /** At most this many interest keys are kept (highest first). */
  maxKeys: number;
  /** A cart untouched this long, with no order, makes a cart abandoner. */
  cartAbandonAfterMs: number;
  /** A new dominant category must beat the old one by this factor to count as a shift. */
  shiftRatio: number;
  /** ... and reach at least this score. */
  shiftMinScore: number;
  /** ... and the old dominant must have been established within this window. */
  shiftWindowMs: number;
  /** A product viewed within this time after another makes a "viewed next" pair. */
  covisitWindowMs: number;
  /**
   * A person counts a pair once in this time: the counts say how many people viewed one
   * product after another, not how often one browser went back and forth (a single batch of
   * alternating views counted 50 times, enough to rig what every shopper is recommended).
   */
  covisitOncePerMs: number;
  highValueRevenue: number;
  highValueOrders: number;
  frequentBrowserViews: number;
  /** Marketer-defined segments: all counters at or above the given values. */
  customSegments: { id: string; minCounters: Record<string, number> }[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const DEFAULT_RULES: ProfileRules = {
  halfLifeMs: 14 * DAY_MS,
  maxIncrement: 5,
  maxScore: 100,
  minScore: 0.01,
  maxKeys: 200,
  cartAbandonAfterMs: 30 * 60 * 1000,
  shiftRatio: 1.5,
  shiftMinScore: 3,
  shiftWindowMs: 7 * DAY_MS,
  covisitWindowMs: 60 * 60 * 1000,
  covisitOncePerMs: DAY_MS,
  highValueRevenue: 500,
  highValueOrders: 5,
  frequentBrowserViews: 10,
  customSegments: [],
};

export const MAX_RECENT_ACTIONS = 100;
/** Trait keys a profile keeps: a new key past them is not stored (identify and merge alike). */
export const MAX_TRAIT_KEYS = 100;
/**
 * Bytes of a profile's traits as JSON (UTF-8): a trait that would take them past this is not
 * stored, so that one person's snapshot always fits a queue message (128 KB). The traits
 * kept are the older ones: a newer key, or a newer value of a key, that does not fit is left out.
 */
export const MAX_TRAITS_BYTES = 16 * 1024;
/**
 * Distinct counters a profile keeps. Counters are keyed by event name, which producers
 * choose freely: past this many, a new name is not counted. The profile's own counters
 * (events, sessions, orders, revenue), the known event names and those the site's segment
 * rules read are always counted.
 */
export const MAX_COUNTERS = 200;
const ALWAYS_COUNTED: ReadonlySet<string> = new Set<string>([
  'events',
  'sessions',
  'orders',
  'revenue',
  ...KNOWN_EVENT_NAMES,
]);
const MAX_LIST = 200;
/** Counted orders a profile remembers for refunds (a shop's returns window is weeks, not hundreds of orders). */
export const COUNTED_ORDERS_MAX = 100;
/**
 * How long a counted order can be refunded: as long as ProfileDO keeps the order's seen-id
 * (an event naming it is accepted up to LIMITS.maxEventAgeMs after it was made, plus a day).
 */
export const COUNTED_ORDER_KEEP_MS = LIMITS.maxEventAgeMs + DAY_MS;
/**
 * The longest product id, category or tag a profile learns from; a longer one is ignored, as
 * if the event had not named it. Producers may send any string of up to 4,096 characters
 * there, longer than any catalog's names: one browser could otherwise grow its profile to
 * megabytes of interest keys, cart, purchases and recent actions, which every batch
 * rewrites and no queue message (128 KB) can carry to Directus.
 */
export const MAX_PRODUCT_NAME_CHARS = 128;
/**
 * Browsers linked to one person. The list is who the person is (erasure and retention
 * tombstone or forget every browser on it), so it never drops one: past the bound, a new
 * browser is simply not linked (its anonymous history stays its own, erasable by its key).
 */
export const MAX_BROWSERS = 200;

/** Links a browser to the profile unless the profile is at MAX_BROWSERS; whether it is linked. */
export function linkBrowserTo(state: ProfileState, anonymousId: string): boolean {
  if (state.anonymousIds.includes(anonymousId)) return true;
  if (state.anonymousIds.length >= MAX_BROWSERS) return false;
  state.anonymousIds.push(anonymousId);
  return true;
}

export function emptyProfile(siteId: string, personKey: PersonKey, at: string): ProfileState {
  return {
    siteId,
    personKey,
    anonymousIds: [],
    traits: {},
    interests: {},
    interestsAsOf: Date.parse(at),
    counters: {},
    recentActions: [],
    cart: [],
    purchased: [],
    offers: {},
    firstSeen: at,
    lastSeen: at,
    version: 0,
  };
}

/** The factor a score keeps after `elapsedMs`: 2^(-elapsed / halfLife). */
export function decayFactor(elapsedMs: number, halfLifeMs: number): number {
  if (elapsedMs <= 0 || halfLifeMs <= 0) return 1;
  return 2 ** (-elapsedMs / halfLifeMs);
}

/** Interests decayed to `now`, small scores dropped. Pure: returns a new map. */
export function decayedInterests(
  interests: Record<string, number>,
  asOf: number,
  now: number,
  rules: ProfileRules,
): Record<string, number> {
  const factor = decayFactor(now - asOf, rules.halfLifeMs);
  const out: Record<string, number> = {};
  for (const [key, score] of Object.entries(interests)) {
    const next = score * factor;
    if (next >= rules.minScore) out[key] = next;
  }
  return out;
}

function decayTo(state: ProfileState, now: number, rules: ProfileRules): void {
  if (now <= state.interestsAsOf) return;
  state.interests = decayedInterests(state.interests, state.interestsAsOf, now, rules);
  state.interestsAsOf = now;
}

function asString(v: JsonValue | undefined): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

interface ProductFacts {
  productId?: string;
  category?: string;
  tags: string[];
}

/** A product id, category or tag, if it is one a profile learns from (see MAX_PRODUCT_NAME_CHARS). */
function productName(v: JsonValue | undefined): string | undefined {
  const name = asString(v);
  return name !== undefined && name.length <= MAX_PRODUCT_NAME_CHARS ? name : undefined;
}

function productFacts(v: JsonValue | undefined): ProductFacts | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const tags = Array.isArray(v.tags) ? v.tags.flatMap((t) => productName(t) ?? []) : [];
  const facts: ProductFacts = { tags: tags.slice(0, 50) };
  const productId = productName(v.productId);
  const category = productName(v.category);
  if (productId !== undefined) facts.productId = productId;
  if (category !== undefined) facts.category = category;
  return facts;
}

/** The products an event is about: its own properties, or its `products` list. */
function productsOf(event: CustomerAction): ProductFacts[] {
  const props = event.properties ?? {};
  const list = props.products;
  const out: ProductFacts[] = [];
  if (Array.isArray(list)) {
    for (const item of list.slice(0, 100)) {
      const facts = productFacts(item);
      if (facts) out.push(facts);
    }
  }
  const own = productFacts(props);
  if (own && (own.productId !== undefined || own.category !== undefined || own.tags.length > 0))
    out.push(own);
  return out;
}

function addInterest(state: ProfileState, key: string, amount: number, rules: ProfileRules): void {
  const current = state.interests[key] ?? 0;
  state.interests[key] = Math.min(rules.maxScore, current + Math.min(amount, rules.maxIncrement));
}

function trimInterests(state: ProfileState, rules: ProfileRules): void {
  const keys = Object.keys(state.interests);
  if (keys.length <= rules.maxKeys) return;
  const kept = Object.entries(state.interests)
    .sort((a, b) => b[1] - a[1])
    .slice(0, rules.maxKeys);
  state.interests = Object.fromEntries(kept);
}

function bump(counters: Record<string, number>, key: string, by = 1): void {
  counters[key] = (counters[key] ?? 0) + by;
}

/** Adds to a counter unless it is a new one past MAX_COUNTERS (see there for those always counted). */
function count(counters: Record<string, number>, key: string, by: number, rules: ProfileRules): void {
  if (
    !Object.hasOwn(counters, key) &&
    !ALWAYS_COUNTED.has(key) &&
    !rules.customSegments.some((segment) => Object.hasOwn(segment.minCounters, key)) &&
    Object.keys(counters).length >= MAX_COUNTERS
  )
    return;
  bump(counters, key, by);
}

/**
 * Stores `incoming` traits within MAX_TRAIT_KEYS and MAX_TRAITS_BYTES, in order: one that
 * does not fit is left out, and the next ones are still tried. `overwrite: false` keeps the
 * value a key already has (a merge: the person's own traits win).
 */
function setTraits(state: ProfileState, incoming: Record<string, JsonValue>, overwrite: boolean): void {
  let keys = Object.keys(state.traits).length;
  let bytes = 2;
  for (const [key, value] of Object.entries(state.traits)) bytes += jsonEntryBytes(key, value);
  for (const [key, value] of Object.entries(incoming)) {
    const held = Object.hasOwn(state.traits, key);
    if (held && !overwrite) continue;
    if (!held && keys >= MAX_TRAIT_KEYS) continue;
    const old = held ? jsonEntryBytes(key, state.traits[key] ?? null) : 0;
    const next = bytes - old + jsonEntryBytes(key, value);
    // Over the bound only if it grows them: a profile stored over it before the bound held
    // still takes a change of the same size or smaller (a corrected email).
    if (next > MAX_TRAITS_BYTES && next > bytes) continue;
    // defineProperty keeps a `__proto__` trait as data instead of touching the prototype.
    Object.defineProperty(state.traits, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    bytes = next;
    if (!held) keys++;
  }
}

function pushUnique(list: string[], value: string): void {
  if (!list.includes(value)) {
    list.push(value);
    if (list.length > MAX_LIST) list.shift();
  }
}

/**
 * Adds counted orders (kept by orderId, oldest first) and forgets those past
 * COUNTED_ORDER_KEEP_MS before `now` or over the bounds, the oldest first.
 */
function rememberOrders(state: ProfileState, orders: readonly CountedOrder[], now: number): void {
  const byId = new Map<string, CountedOrder>();
  for (const order of [...(state.countedOrders ?? []), ...orders])
    if (!byId.has(order.orderId)) byId.set(order.orderId, order);
  const kept = [...byId.values()]
    .filter((order) => now - order.at < COUNTED_ORDER_KEEP_MS)
    .sort((a, b) => a.at - b.at);
  let ids = 0;
  for (const order of kept) ids += order.products.length;
  while (kept.length > COUNTED_ORDERS_MAX || ids > MAX_LIST) ids -= kept.shift()?.products.length ?? 0;
  if (kept.length > 0) state.countedOrders = kept;
  else delete state.countedOrders;
}

/**
 * Takes back what a counted order added, for a refund of it: the refunded total (undefined:
 * the whole order) comes off revenue (never below 0); a full refund (the whole total, or no
 * total given) takes the order off the count and its products out of `purchased`, except
 * those another counted order bought too. Whether the order was counted here.
 */
function refundOrder(state: ProfileState, orderId: string, refunded: number | undefined): boolean {
  const order = state.countedOrders?.find((o) => o.orderId === orderId);
  if (order === undefined) return false;
  const full = refunded === undefined || refunded >= order.total;
  const amount = full ? order.total : refunded;
  state.counters.revenue = Math.max(0, (state.counters.revenue ?? 0) - amount);
  order.total -= amount;
  if (full) {
    state.counters.orders = Math.max(0, (state.counters.orders ?? 0) - 1);
    const others = state.countedOrders?.filter((o) => o !== order) ?? [];
    const stillBought = new Set(others.flatMap((o) => o.products));
    state.purchased = state.purchased.filter((id) => stillBought.has(id) || !order.products.includes(id));
    if (others.length > 0) state.countedOrders = others;
    else delete state.countedOrders;
  }
  return true;
}

/**
 * An order's or a refund's `total` when it is a number, else undefined: an order adds no
 * revenue then, and a refund is of the whole order.
 */
function totalOf(event: CustomerAction): number | undefined {
  const total = event.properties?.total;
  return typeof total === 'number' && Number.isFinite(total) ? total : undefined;
}

/**
 * Adds held refunds (one per order and refundId: the same refund from two profiles merged
 * is one) and forgets those past COUNTED_ORDER_KEEP_MS before `now` or over
 * COUNTED_ORDERS_MAX, the oldest first: an order that has not come by then will not count.
 */
function holdRefunds(state: ProfileState, refunds: readonly HeldRefund[], now: number): void {
  const byRefund = new Map<string, HeldRefund>();
  for (const refund of [...(state.heldRefunds ?? []), ...refunds]) {
    const key = JSON.stringify([refund.orderId, refund.refundId ?? null]);
    if (!byRefund.has(key)) byRefund.set(key, refund);
  }
  const kept = [...byRefund.values()]
    .filter((refund) => now - refund.at < COUNTED_ORDER_KEEP_MS)
    .sort((a, b) => a.at - b.at)
    .slice(-COUNTED_ORDERS_MAX);
  if (kept.length > 0) state.heldRefunds = kept;
  else delete state.heldRefunds;
}

/**
 * Takes the held refunds of the orders counted now, each once (it leaves the list), in the
 * order they came. One whose order was counted and already taken back whole is spent too.
 */
function heldRefundsTaken(state: ProfileState): void {
  const held = state.heldRefunds;
  if (held === undefined) return;
  const counted = new Set(state.countedOrders?.map((o) => o.orderId));
  const waiting = held.filter((refund) => !counted.has(refund.orderId));
  for (const refund of held)
    if (counted.has(refund.orderId)) refundOrder(state, refund.orderId, refund.total);
  if (waiting.length > 0) state.heldRefunds = waiting;
  else delete state.heldRefunds;
}

/** The category with the highest score, if any. */
export function dominantCategory(
  interests: Record<string, number>,
): { key: string; score: number } | undefined {
  let best: { key: string; score: number } | undefined;
  for (const [key, score] of Object.entries(interests)) {
    if (!key.startsWith('category:')) continue;
    if (!best || score > best.score) best = { key, score };
  }
  return best;
}

/** What applying one event produced besides the state change. */
export interface ApplyOutcome {
  emitted: CustomerAction[];
  covisit?: { from: string; to: string; at: string };
  /** An `order.refunded` for an order this profile did not count: held for it (heldRefunds), nothing changed yet. */
  refundHeld?: true;
}

/**
 * Applies one accepted, personalization-granted event to a profile, at `at` (the
 * server-corrected event time). Mutates `state`. `linkBrowser: false` leaves the event's
 * browser out of the profile's browsers (it belongs to someone else).
 */
export function applyEvent(
  state: ProfileState,
  event: CustomerAction,
  at: number,
  rules: ProfileRules,
  linkBrowser = true,
): ApplyOutcome {
  const outcome: ApplyOutcome = { emitted: [] };
  const now = Math.max(at, state.interestsAsOf);
  decayTo(state, now, rules);
  const iso = new Date(now).toISOString();

  if (linkBrowser && !event.anonymousId.startsWith('server:')) linkBrowserTo(state, event.anonymousId);
  bump(state.counters, 'events');
  count(state.counters, event.name, 1, rules);
  if (event.sessionId !== undefined && event.sessionId !== state.lastSessionId) {
    bump(state.counters, 'sessions');
    state.lastSessionId = event.sessionId;
  }

  const products = productsOf(event);
  const weight = (SIGNAL_WEIGHT as Record<string, number | undefined>)[event.name] ?? 0;
  if (weight > 0) {
    // One event adds at most `weight` to each key it touches, however many products name it.
    const touched = new Map<string, number>();
    for (const p of products) {
      if (p.category !== undefined) touched.set(`category:${p.category}`, weight);
      for (const tag of p.tags) touched.set(`tag:${tag}`, weight);
    }
    if (event.name === 'search.performed') {
      const query = asString(event.properties?.query);
      if (query !== undefined) touched.set(`search:${query.toLowerCase().slice(0, 64)}`, weight);
    }
    for (const [key, amount] of touched) addInterest(state, key, amount, rules);
    trimInterests(state, rules);
  }

  const first = products[0];
  switch (event.name) {
    case 'product.viewed': {
      const productId = first?.productId;
      if (productId !== undefined) {
        const prev = state.lastProductView;
        if (
          prev &&
          prev.productId !== productId &&
          now - prev.at <= rules.covisitWindowMs &&
          countsPair(state, prev.productId, productId, now, rules)
        ) {
          outcome.covisit = { from: prev.productId, to: productId, at: iso };
        }
        state.lastProductView = { productId, at: now };
      }
      break;
    }
    case 'cart.item.added':
      // An add made before the person's last order (flushed late from an offline device)
      // was emptied from the cart by that order: put back, it would be a bought product in
      // the cart and make a cart abandoner of the buyer.
      if (state.lastOrderEventAt !== undefined && at < state.lastOrderEventAt) break;
      if (first?.productId !== undefined) pushUnique(state.cart, first.productId);
      state.lastCartAddAt = now;
      state.lastCartAddEventAt = Math.max(state.lastCartAddEventAt ?? at, at);
      break;
    case 'cart.item.removed':
      if (first?.productId !== undefined) state.cart = state.cart.filter((id) => id !== first.productId);
      break;
    case 'order.completed': {
      bump(state.counters, 'orders');
      const total = totalOf(event);
      if (total !== undefined) bump(state.counters, 'revenue', total);
      for (const p of products) if (p.productId !== undefined) pushUnique(state.purchased, p.productId);
      const orderId = asString(event.properties?.orderId);
      if (orderId !== undefined)
        rememberOrders(
          state,
          [
            {
              orderId,
              total: total ?? 0,
              products: products.flatMap((p) => (p.productId === undefined ? [] : [p.productId])),
              at,
            },
          ],
          now,
        );
      // A refund that came before this order takes it back now.
      heldRefundsTaken(state);
      // An order arriving after a later cart add (the Directus Flow's, caught up minutes late;
      // an offline device's) takes its own products out of the cart, not what was added since.
      state.cart =
        at < (state.lastCartAddEventAt ?? at)
          ? state.cart.filter((id) => !products.some((p) => p.productId === id))
          : [];
      state.lastOrderAt = now;
      state.lastOrderEventAt = Math.max(state.lastOrderEventAt ?? at, at);
      break;
    }
    case 'order.refunded': {
      const orderId = asString(event.properties?.orderId);
      if (orderId === undefined) break;
      rememberOrders(state, [], now);
      const total = totalOf(event);
      if (!refundOrder(state, orderId, total)) {
        const refundId = asString(event.properties?.refundId);
        holdRefunds(
          state,
          [
            {
              orderId,
              at,
              ...(refundId !== undefined && { refundId }),
              ...(total !== undefined && { total }),
            },
          ],
          now,
        );
        outcome.refundHeld = true;
      }
      break;
    }
    default:
      break;
  }

  if (event.traits) setTraits(state, event.traits, true);
  if (event.userId !== undefined && state.personKey.startsWith('user:')) state.userId = event.userId;

  const action: RecentAction = { id: event.id, name: event.name, at: iso };
  if (first?.productId !== undefined) action.productId = first.productId;
  if (first?.category !== undefined) action.category = first.category;
  state.recentActions.unshift(action);
  if (state.recentActions.length > MAX_RECENT_ACTIONS) state.recentActions.length = MAX_RECENT_ACTIONS;

  const shift = detectShift(state, now, rules);
  if (shift) outcome.emitted.push(shiftEvent(state, event, shift, iso));
  if (iso > state.lastSeen) state.lastSeen = iso;
  state.version++;
  return outcome;
}

/**
 * Interest shift: the dominant category changes to one that beats the previous dominant
 * by `shiftRatio`, within the window after the previous one was last on top (a sharp
 * change, not a slow drift over months). The previous one's time is refreshed while it
 * stays on top: a long-standing interest overtaken by a burst is a shift too (before, its
 * time was when it first became dominant, so a customer loyal to one category for more
 * than the window never shifted).
 */
function detectShift(
  state: ProfileState,
  now: number,
  rules: ProfileRules,
): { from: string; to: string; fromScore: number; toScore: number } | undefined {
  const top = dominantCategory(state.interests);
  if (!top) return undefined;
  const prev = state.dominant;
  if (!prev) {
    state.dominant = { key: top.key, since: now };
    return undefined;
  }
  if (prev.key === top.key) {
    prev.since = now;
    return undefined;
  }
  const fromScore = state.interests[prev.key] ?? 0;
  const sharp = top.score >= rules.shiftMinScore && top.score >= fromScore * rules.shiftRatio;
  if (!sharp) return undefined;
  const withinWindow = now - prev.since <= rules.shiftWindowMs;
  state.dominant = { key: top.key, since: now };
  if (!withinWindow) return undefined;
  return { from: prev.key, to: top.key, fromScore, toScore: top.score };
}

function shiftEvent(
  state: ProfileState,
  cause: CustomerAction,
  shift: { from: string; to: string; fromScore: number; toScore: number },
  at: string,
): CustomerAction {
  const event: CustomerAction = {
    id: newUlid(Date.parse(at)),
    type: 'track',
    name: EDGE_EVENT.interestShifted,
    timestamp: at,
    anonymousId: cause.anonymousId,
    properties: {
      from: shift.from.slice('category:'.length),
      to: shift.to.slice('category:'.length),
      fromScore: Math.round(shift.fromScore * 1000) / 1000,
      toScore: Math.round(shift.toScore * 1000) / 1000,
      causeEventId: cause.id,
    },
    schemaVersion: 1,
  };
  if (state.userId !== undefined) event.userId = state.userId;
  return event;
}

/** Segments a person is in at `now`, evaluated from counters, cart and timing. */
export function evaluateSegments(state: ProfileState, now: number, rules: ProfileRules): string[] {
  const c = state.counters;
  const segments: string[] = [];
  const sessions = c.sessions ?? 0;
  const orders = c.orders ?? 0;
  const views = (c['product.viewed'] ?? 0) + (c['page.viewed'] ?? 0);
  if (sessions <= 1 && orders === 0) segments.push(BUILT_IN_SEGMENTS.newVisitor);
  const lastAdd = state.lastCartAddAt;
  if (
    state.cart.length > 0 &&
    lastAdd !== undefined &&
    now - lastAdd >= rules.cartAbandonAfterMs &&
    (state.lastOrderAt === undefined || state.lastOrderAt < lastAdd)
  ) {
    segments.push(BUILT_IN_SEGMENTS.cartAbandoner);
  }
  if (views >= rules.frequentBrowserViews && orders <= 1)
    segments.push(BUILT_IN_SEGMENTS.frequentBrowserRareBuyer);
  if ((c.revenue ?? 0) >= rules.highValueRevenue || orders >= rules.highValueOrders)
    segments.push(BUILT_IN_SEGMENTS.highValue);
  for (const custom of rules.customSegments) {
    const inIt = Object.entries(custom.minCounters).every(([counter, min]) => (c[counter] ?? 0) >= min);
    if (inIt) segments.push(custom.id);
  }
  return segments;
}

/** The read-only view decide, triggers and admin see, decayed to `now`. */
export function toView(state: ProfileState, now: number, rules: ProfileRules): ProfileView {
  return { ...toSummary(state, now, rules), recentActions: state.recentActions.map((a) => ({ ...a })) };
}

/** The view without the recent actions (the ingest path does not read them; copying 100 per call costs). */
export function toSummary(state: ProfileState, now: number, rules: ProfileRules): ProfileSummary {
  const asOf = Math.max(now, state.interestsAsOf);
  const view: ProfileSummary = {
    siteId: state.siteId,
    personKey: state.personKey,
    anonymousIds: [...state.anonymousIds],
    traits: { ...state.traits },
    interests: decayedInterests(state.interests, state.interestsAsOf, asOf, rules),
    segments: evaluateSegments(state, asOf, rules),
    counters: { ...state.counters },
    cart: [...state.cart],
    purchased: [...state.purchased],
    offers: { ...state.offers },
    firstSeen: state.firstSeen,
    lastSeen: state.lastSeen,
    asOf: new Date(asOf).toISOString(),
  };
  if (state.userId !== undefined) view.userId = state.userId;
  if (state.consent) {
    view.consent = state.consent.state;
    view.consentId = state.consent.eventId;
  }
  // By the real clock, not the profile's: a code that has ended is not offered again.
  if (state.promo !== undefined && state.promo.expiresAt > now)
    view.promo = { ...state.promo, expiresAt: new Date(state.promo.expiresAt).toISOString() };
  return view;
}

/** Of two promos offered, the one that runs longer (a merge or a replay keeps one). */
export function laterPromo(
  a: OfferedPromo<number> | undefined,
  b: OfferedPromo<number> | undefined,
): OfferedPromo<number> | undefined {
  if (a === undefined) return b === undefined ? undefined : { ...b };
  return b !== undefined && b.expiresAt > a.expiresAt ? { ...b } : a;
}

/** Pairs a profile remembers having counted (a short hash each: product ids run to 128 characters). */
export const MAX_COUNTED_PAIRS = 32;

/**
 * Forgets, in place, the pairs of a list (oldest first) counted `covisitOncePerMs` or longer
 * before `now` and, past MAX_COUNTED_PAIRS, the oldest.
 */
function forgetOldPairs(pairs: [string, number][], now: number, rules: ProfileRules): void {
  let first = 0;
  while (first < pairs.length && now - (pairs[first]?.[1] ?? now) >= rules.covisitOncePerMs) first++;
  pairs.splice(0, Math.max(first, pairs.length - MAX_COUNTED_PAIRS));
}

/**
 * Whether this person's view of `to` after `from` counts as a "viewed next" pair: not when
 * they counted it within `covisitOncePerMs`. Records it when it does (forgetOldPairs). (A
 * browser cycling through more pairs than it remembers counts some again: at most one per
 * view, as before.) A list, oldest first, changed in place: this runs for most product
 * views, on the ingest's hot path (rebuilding a record per view cost a measurable share of
 * a batch's CPU).
 */
function countsPair(
  state: ProfileState,
  from: string,
  to: string,
  now: number,
  rules: ProfileRules,
): boolean {
  const key = hash32(`${from}\u0000${to}`).toString(36);
  state.covisited ??= [];
  const pairs = state.covisited;
  forgetOldPairs(pairs, now, rules);
  for (const [pair] of pairs) if (pair === key) return false;
  pairs.push([key, now]);
  forgetOldPairs(pairs, now, rules);
  return true;
}

/**
 * Forgets what personalization built (interests, actions, cart, segments) when it is
 * withdrawn. `offers` stays: it is the promotions sink's count against each rule's
 * per-person cap, not something learned, and forgetting it would offer a capped promo again.
 */
export function clearPersonalization(state: ProfileState): void {
  state.interests = {};
  state.counters = {};
  state.recentActions = [];
  state.cart = [];
  state.purchased = [];
  state.traits = {};
  delete state.dominant;
  delete state.lastProductView;
  delete state.covisited;
  delete state.lastCartAddAt;
  delete state.lastCartAddEventAt;
  delete state.lastOrderAt;
  delete state.lastOrderEventAt;
  delete state.countedOrders;
  delete state.heldRefunds;
  // The sessions counted are gone: the next event's session is counted afresh (kept, a
  // visit that re-granted personalization, or a sign-in merging this cleared profile,
  // would never count it).
  delete state.lastSessionId;
  state.version++;
}

/**
 * Merges an anonymous profile into a person's profile (the first verified identify), within
 * the profile's bounds (interest keys, traits, counters, lists). The newer of the two
 * consent records, by when each choice was made, is the person's, less what an older
 * browser choice withdraws if it reached the Worker after the newer one was made (a slow
 * clock); when that changes the person's record and withdraws personalization, what either
 * profile learned is forgotten, as a withdrawal made here would have. Returns whether that
 * happened (the cleared profile must go downstream).
 */
export function mergeProfiles(into: ProfileState, from: ProfileState, rules: ProfileRules): boolean {
  const now = Math.max(into.interestsAsOf, from.interestsAsOf);
  decayTo(into, now, rules);
  const theirs = decayedInterests(from.interests, from.interestsAsOf, now, rules);
  for (const [key, score] of Object.entries(theirs)) {
    into.interests[key] = Math.min(rules.maxScore, (into.interests[key] ?? 0) + score);
  }
  trimInterests(into, rules);
  for (const [key, n] of Object.entries(from.counters)) count(into.counters, key, n, rules);
  into.recentActions = [...into.recentActions, ...from.recentActions]
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
    .slice(0, MAX_RECENT_ACTIONS);
  for (const id of from.cart) pushUnique(into.cart, id);
  for (const id of from.purchased) pushUnique(into.purchased, id);
  for (const id of from.anonymousIds) linkBrowserTo(into, id);
  setTraits(into, from.traits, false);
  for (const [rule, n] of Object.entries(from.offers)) bump(into.offers, rule, n);
  const promo = laterPromo(into.promo, from.promo);
  if (promo !== undefined) into.promo = promo;
  // The pairs the browser counted are the person's now: they count again only after a day.
  // And its last view goes on as theirs (the view after the sign-in follows it).
  const latest = new Map<string, number>();
  for (const [pair, at] of [...(into.covisited ?? []), ...(from.covisited ?? [])])
    latest.set(pair, Math.max(at, latest.get(pair) ?? at));
  if (latest.size > 0) {
    const pairs = [...latest].sort((a, b) => a[1] - b[1]);
    forgetOldPairs(pairs, now, rules);
    into.covisited = pairs;
  }
  if (from.lastProductView !== undefined && (into.lastProductView?.at ?? 0) < from.lastProductView.at)
    into.lastProductView = from.lastProductView;
  if (from.firstSeen < into.firstSeen) into.firstSeen = from.firstSeen;
  // The browser's session goes on as the person's: a merge is made for that browser's event
  // (its sign-in), which is applied next, in that session; counting it again (the browser's
  // sessions are added above) made a first visit two sessions, out of new_visitor.
  if (from.lastSessionId !== undefined) into.lastSessionId = from.lastSessionId;
  if (from.lastSeen > into.lastSeen) into.lastSeen = from.lastSeen;
  if (from.lastCartAddAt !== undefined && (into.lastCartAddAt ?? 0) < from.lastCartAddAt)
    into.lastCartAddAt = from.lastCartAddAt;
  if (from.lastCartAddEventAt !== undefined && (into.lastCartAddEventAt ?? 0) < from.lastCartAddEventAt)
    into.lastCartAddEventAt = from.lastCartAddEventAt;
  if (from.lastOrderAt !== undefined && (into.lastOrderAt ?? 0) < from.lastOrderAt)
    into.lastOrderAt = from.lastOrderAt;
  if (from.lastOrderEventAt !== undefined && (into.lastOrderEventAt ?? 0) < from.lastOrderEventAt)
    into.lastOrderEventAt = from.lastOrderEventAt;
  // The browser's orders are the person's: a refund sent for one under the user's id finds it.
  if (from.countedOrders !== undefined)
    rememberOrders(
      into,
      from.countedOrders.map((o) => ({ ...o, products: [...o.products] })),
      now,
    );
  // And its held refunds: each waits for, or now takes back, an order of either.
  if (from.heldRefunds !== undefined)
    holdRefunds(
      into,
      from.heldRefunds.map((r) => ({ ...r })),
      now,
    );
  heldRefundsTaken(into);
  let withdrawn = false;
  // Last: a withdrawal clears everything merged above too. The newer choice stands. An older
  // browser choice that reached the Worker after the person's choice was made is ordered as
  // a consent event arriving late (consentAfter: its withdrawals still count, since a device
  // whose clock is days slow dates them back); one that arrived before it was made is simply
  // older, and the person's newer choice stands whole.
  const browserChoice = from.consent;
  const ordered =
    browserChoice !== undefined &&
    (chosenLater(browserChoice, into.consent) ||
      (into.consent !== undefined && Date.parse(browserChoice.recordedAt) > choiceTime(into.consent)));
  const inForce = ordered ? consentAfter(browserChoice, into.consent) : into.consent;
  if (inForce && inForce !== into.consent) {
    into.consent = inForce;
    if (!isGranted(inForce.state, 'personalization')) {
      clearPersonalization(into);
      withdrawn = true;
    }
  }
  into.version++;
  return withdrawn;
}
