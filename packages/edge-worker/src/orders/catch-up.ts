/**
 * The catch-up of paid orders the Directus order Flow did not deliver. The Flow POSTs each
 * new order to /v1/collect once, without retrying: an order created while the Worker was
 * down, being deployed, or answering 5xx/429 never became an `order.completed`, so the
 * purchase was missing from the person's profile, segments, triggers and lift. Every five
 * minutes the scheduled check reads each site's paid orders created since its watermark
 * (at most a day back) and ingests each as the very event the Flow builds, with the same
 * id (`orderEventId`), so the ProfileDO's dedupe (by event id, and by order id for 31 days)
 * drops those the Flow did deliver. It goes through the Flow's own path (ingestBatch, as the site's server): the
 * person's recorded consent decides, a signed-in buyer is their user id, an erased
 * person's tombstone drops it. The Flow's script is services/directus/scripts/flow-scripts.mjs
 * (ORDER_SCRIPT): a change to the event there must be made here too. The paid-order Flow
 * sends the same event when an update marks an order paid, however long after its creation:
 * so a run also reads the orders whose `date_updated` (set by Directus on every update) is
 * past a watermark of its own, and makes up for that Flow's lost call too.
 */
import {
  type CustomerAction,
  LIMITS,
  PURCHASE_ORDER_STATUSES,
  parseCollectRequest,
  ulidOf,
} from '@attune/shared-schema';
import { type DirectusClient, DirectusError, type DirectusFilter } from '../directus/client.ts';
import type { RequestFacts } from '../enrich/index.ts';
import { ingestBatch } from '../ingest/pipeline.ts';
import { traceparentOf } from '../observability/index.ts';
import type { Site } from '../sites/index.ts';

/** How far back the catch-up reads: older than the dedupe window it could count an order twice. */
export const ORDERS_LOOK_BACK_MS = 24 * 60 * 60 * 1000;
/**
 * How far before its watermark a run reads again: an order written to Directus a little
 * after its `created_at` (a backend's clock, a slow write) is still read once its Flow ran.
 */
export const ORDERS_OVERLAP_MS = 10 * 60 * 1000;
/**
 * Orders per Directus read and per ingest. Each buyer is a Durable Object call, which counts
 * as a subrequest (Workers Free allows 50 an invocation): a page that small keeps a run on
 * Free making progress, a page at a time.
 */
export const ORDERS_PAGE_SIZE = 25;
/** Pages per site and run: a longer backlog goes on at the next run, from where this one stopped. */
export const ORDERS_MAX_PAGES = 40;

/**
 * The times a run reads orders by, each from its own watermark: when an order was placed
 * (the order Flow sends it on create) and when it was last changed (the paid-order Flow
 * sends it when an update marks it paid).
 */
export type OrderTime = 'created_at' | 'date_updated';

/** The KV key of the time up to which a site's orders, by `by`, have been caught up. */
export const ordersWatermarkKey = (siteId: string, by: OrderTime = 'created_at') =>
  by === 'created_at' ? `orders:caught-up:${siteId}` : `orders:caught-up:${by}:${siteId}`;

/** An `orders` row, as the Flow's trigger payload and a Directus read both give it. */
export interface OrderRow {
  id: string;
  site_id?: string | null;
  user_id?: string | null;
  anonymous_id?: string | null;
  total?: number | string | null;
  currency?: string | null;
  items?: unknown;
  status?: string | null;
  created_at?: string | null;
  /** Set by Directus on every update through its API or Data Studio (special `date-updated`). */
  date_updated?: string | null;
}

const ORDER_FIELDS = [
  'id',
  'site_id',
  'user_id',
  'anonymous_id',
  'total',
  'currency',
  'items',
  'status',
  'created_at',
];

/**
 * The id the Flow gives an order's event: a ULID whose time is the order's creation and
 * whose random part is the first 16 bytes of SHA-256(`order:<id>`), each taken mod 32.
 */
export async function orderEventId(createdMs: number, orderId: string): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`order:${orderId}`));
  return ulidOf(createdMs, new Uint8Array(hash, 0, 16));
}

/** Whether the Flow sends an order: an empty status, or one of PURCHASE_ORDER_STATUSES. */
export function isPurchase(order: Pick<OrderRow, 'status'>): boolean {
  const status = String(order.status ?? '').toLowerCase();
  return status === '' || PURCHASE_ORDER_STATUSES.includes(status);
}

/**
 * The `order.completed` the Flow builds for `order`, or undefined for one it does not send
 * as a purchase, or whose creation time is unknown (the Flow then stamps its own clock, so
 * its event id cannot be made again).
 */
export async function orderEvent(order: OrderRow): Promise<CustomerAction | undefined> {
  const created = typeof order.created_at === 'string' ? Date.parse(order.created_at) : Number.NaN;
  if (!isPurchase(order) || !Number.isFinite(created)) return undefined;
  const id = String(order.id);
  const anonymousId = order.anonymous_id
    ? String(order.anonymous_id)
    : order.user_id
      ? `server:${String(order.user_id)}`
      : `order-${id}`;
  const event: CustomerAction = {
    id: await orderEventId(created, id),
    type: 'track',
    name: 'order.completed',
    timestamp: new Date(created).toISOString(),
    anonymousId,
    properties: {
      orderId: id,
      total: Number(order.total) || 0,
      currency: order.currency || 'EUR',
      products: Array.isArray(order.items) ? order.items : [],
    },
    context: { library: { name: 'directus-flow', version: '1' } },
    schemaVersion: 1,
  };
  if (order.user_id) event.userId = String(order.user_id);
  return event;
}

/** What one site's run did: counts only, never whose. */
export interface OrdersCaughtUp {
  /** Paid orders read. */
  read: number;
  /** Delivered now: the Flow had not. */
  delivered: number;
  /** Delivered before (by the Flow or an earlier run). */
  duplicates: number;
  /** Dropped by the person's consent or an erasure's tombstone, as the Flow's would have been. */
  dropped: number;
  /** Refused by validation (an order the Flow's event would have been refused for too). */
  rejected: number;
}

/**
 * Catches up `site`'s paid orders created, then those changed (marked paid), from each
 * time's watermark (less the overlap; at most a day back) to `now`, and moves the watermarks
 * on. `unsited`: orders without a site are the site's (the one site the Worker serves, as
 * the Flows send them). Throws when Directus or a person's ProfileDO fails; a watermark then
 * moves past the pages delivered whole only, and the next run reads the rest again.
 */
export async function catchUpOrders(
  env: Env,
  site: Site,
  options: { directus: DirectusClient; now: number; unsited: boolean },
): Promise<OrdersCaughtUp> {
  const done: OrdersCaughtUp = { read: 0, delivered: 0, duplicates: 0, dropped: 0, rejected: 0 };
  // Created first: an instance not yet bootstrapped with `date_updated` still catches those up.
  await catchUpBy('created_at', env, site, options, done);
  try {
    await catchUpBy('date_updated', env, site, options, done);
  } catch (e) {
    if (e instanceof DirectusError && /date_updated/.test(e.message))
      throw new Error(
        'orders.date_updated is missing in Directus: bootstrap it again (./attune up) to catch up orders marked paid whose Flow call was lost',
      );
    throw e;
  }
  return done;
}

/** One time's pass of catchUpOrders: the orders whose `by` lies from its watermark to `now`. */
async function catchUpBy(
  by: OrderTime,
  env: Env,
  site: Site,
  options: { directus: DirectusClient; now: number; unsited: boolean },
  done: OrdersCaughtUp,
): Promise<void> {
  const { directus, now, unsited } = options;
  const key = ordersWatermarkKey(site.id, by);
  const watermark = Date.parse((await env.EDGE_CACHE.get(key)) ?? '');
  const from = Math.max(
    now - ORDERS_LOOK_BACK_MS,
    Number.isFinite(watermark) ? watermark - ORDERS_OVERLAP_MS : Number.NEGATIVE_INFINITY,
  );
  const filter: DirectusFilter = {
    _and: [
      unsited
        ? { _or: [{ site_id: { _eq: site.id } }, { site_id: { _empty: true } }] }
        : { site_id: { _eq: site.id } },
      { [by]: { _gte: new Date(from).toISOString() } },
      { [by]: { _lte: new Date(now).toISOString() } },
      // The event keeps the order's creation as its time, and the edge refuses one older
      // than this (the Flow's too): reading such orders would only count them rejected.
      ...(by === 'created_at'
        ? []
        : [{ created_at: { _gte: new Date(now - LIMITS.maxEventAgeMs).toISOString() } }]),
    ],
  };
  // Where the next run goes on from: the last order of the last page delivered whole (the
  // orders at its very time are read again then, and are duplicates), or `now` once all are.
  // Left unset by a run that read no order at all: the next reads the same empty span and
  // more, and KV takes no write (a write per site every five minutes is 288 of the 1,000 a
  // day of Workers KV's free plan).
  let through: number | undefined;
  try {
    for (let page = 0; page < ORDERS_MAX_PAGES; page++) {
      const rows = await directus.readItems<OrderRow>('orders', {
        filter,
        // `date_updated` only where read by it: an instance bootstrapped before the field
        // refuses a read naming it, and still catches up its orders by creation.
        fields: by === 'created_at' ? ORDER_FIELDS : [...ORDER_FIELDS, by],
        sort: [by, 'id'],
        limit: ORDERS_PAGE_SIZE,
        offset: page * ORDERS_PAGE_SIZE,
      });
      await deliver(env, site, rows, now, done);
      if (rows.length < ORDERS_PAGE_SIZE) {
        if (page > 0 || rows.length > 0) through = now;
        break;
      }
      const last = Date.parse(String(rows[rows.length - 1]?.[by]));
      if (Number.isFinite(last)) through = Math.min(now, last + ORDERS_OVERLAP_MS);
    }
  } finally {
    // Kept when a page fails part-way (Directus, a person's object, a plan's subrequest
    // limit): the next run starts at the page that failed, not a day back again.
    if (through !== undefined) await env.EDGE_CACHE.put(key, new Date(through).toISOString());
  }
}

/** Ingests the purchases among `rows` as the Flow's POST would have, as the site's server. */
async function deliver(
  env: Env,
  site: Site,
  rows: OrderRow[],
  now: number,
  done: OrdersCaughtUp,
): Promise<void> {
  const batch: CustomerAction[] = [];
  for (const row of rows) {
    const event = await orderEvent(row);
    if (event !== undefined) batch.push(event);
  }
  done.read += batch.length;
  if (batch.length === 0) return;
  const nowIso = new Date(now).toISOString();
  // Validated and upcast as /v1/collect reads the Flow's body.
  const parsed = parseCollectRequest({ writeKey: site.writeKey, sentAt: nowIso, batch }, { now });
  if (!parsed.ok) {
    done.rejected += batch.length;
    return;
  }
  done.rejected += parsed.rejected.length;
  if (parsed.events.length === 0) return;
  const facts: RequestFacts = { receivedAt: now, receivedAtIso: nowIso, skewMs: 0, device: 'unknown' };
  // The pipeline's follow-ups (the queue, triggers) finish before the run does.
  const background: Promise<unknown>[] = [];
  try {
    const outcome = await ingestBatch(
      env,
      { waitUntil: (p) => background.push(p) },
      {
        site,
        events: parsed.events,
        facts,
        gpc: false,
        trusted: true,
        traceparent: traceparentOf(undefined),
        pathPrefix: 'orders',
      },
    );
    done.delivered += outcome.accepted;
    done.duplicates += outcome.duplicates;
    done.dropped += outcome.dropped;
    done.rejected += outcome.rejected.length;
  } finally {
    await Promise.allSettled(background);
  }
}
