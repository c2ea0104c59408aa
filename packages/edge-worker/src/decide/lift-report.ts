/**
 * The lift report: measureLift (lift.ts) run over a site's event log in Directus, and its
 * outcome kept in Directus `lift_reports`, one row per site, experiment and day the window
 * ended, which a marketer may read, with the 95 % intervals that say how sure it is
 * (lift-stats.ts). A report holds counts and rates only: never a person key, an event id
 * or a property value, since the marketer must not see a person's data.
 * Run daily by the Worker's cron (src/schedule) and on demand by `POST /v1/admin/lift`.
 */
import type { DirectusClient } from '../directus/client.ts';
import { DirectusError, directusFromEnv } from '../directus/client.ts';
import { log } from '../observability/index.ts';
import { EDGE_EVENT } from '../profile/edge-events.ts';
import { ATTRIBUTION_WINDOW_MS, CONVERSION_EVENTS, type LoggedEvent, measureLift } from './lift.ts';
import { differenceInterval, excludesZero, liftInterval } from './lift-stats.ts';

export const LIFT_REPORTS = 'lift_reports';
export const DEFAULT_LIFT_DAYS = 28;
export const MAX_LIFT_DAYS = 90;
/**
 * At most this many events are read per report: a busy site's log must not run a cron out
 * of memory or subrequests. A report that hit it says so (`truncated`) and covers the
 * oldest part of its window only.
 */
export const MAX_LIFT_EVENTS = 200_000;
/** Events per Directus read (a page of 2,000 keeps a 200,000-event report at 100 reads). */
export const LIFT_PAGE_SIZE = 2_000;
/** An experiment name longer than this is not one the edge wrote: it is left out (it is part of a row's key). */
const MAX_EXPERIMENT_CHARS = 128;
const DAY_MS = 24 * 3_600_000;

/** A row of Directus `lift_reports`. */
export interface LiftReportRow {
  /**
   * `<site>:<experiment>:<days>d:<YYYY-MM-DD of window_end>`: a second run of the same window
   * length the same day replaces the first (an on-demand run of another length does not
   * replace the daily report).
   */
  id: string;
  site_id: string;
  experiment: string;
  window_start: string;
  window_end: string;
  treatment_people: number;
  treatment_converters: number;
  treatment_conversions: number;
  treatment_rate: number;
  holdout_people: number;
  holdout_converters: number;
  holdout_conversions: number;
  holdout_rate: number;
  lift: number | null;
  /**
   * The 95 % confidence interval of treatment_rate − holdout_rate (Newcombe's hybrid score
   * interval, lift-stats.ts); null when a group has nobody.
   */
  difference_low: number | null;
  difference_high: number | null;
  /** The 95 % confidence interval of `lift` (log interval of the rate ratio); null when a group has no converter. */
  lift_low: number | null;
  lift_high: number | null;
  /** Whether the difference interval leaves out 0 (significant at 95 %); null without one. */
  significant: boolean | null;
  events_read: number;
  truncated: boolean;
  computed_at: string;
}

/** What a run answers: the window, how much of the log it read, and the rows it wrote. */
export interface SiteLift {
  siteId: string;
  days: number;
  windowStart: string;
  windowEnd: string;
  eventsRead: number;
  truncated: boolean;
  computedAt: string;
  reports: LiftReportRow[];
}

/**
 * The SDK's (and Segment's) identify at sign-in: the row that names a browser and the
 * person it signed in as, read only for that link (see joinedAtSignIn). A browser's
 * decisions before sign-in and its person's conversions on another browser were two people
 * otherwise, one in each group, when no decision or conversion after the sign-in named both.
 */
export const IDENTIFY_EVENT = 'user.identified';

/** The fields of an `events` row the report reads (see sync/mapping.ts, eventRow). */
export interface EventLogRow {
  person_key?: unknown;
  name?: unknown;
  timestamp?: unknown;
  corrected_timestamp?: unknown;
  received_at?: unknown;
  properties?: unknown;
  anonymous_id?: unknown;
  user_id?: unknown;
}

const READ_FIELDS = [
  'person_key',
  'name',
  'timestamp',
  'corrected_timestamp',
  'received_at',
  'properties',
  'anonymous_id',
  'user_id',
];

/** An event as measureLift reads it, and when the log received it (what the window is about). */
export interface WindowedEvent {
  event: LoggedEvent;
  receivedAt: number;
  /**
   * The browser and the signed-in person (`user:<id>`) a row names, when it names both (a
   * signed-in event, or a merged browser's routed to its person): what joins a browser's
   * events before sign-in to the person's after.
   */
  signedIn?: { browser: string; person: string };
}

/**
 * A shop's refund of an order (a return, a cancellation), read so that an order refunded in
 * full is no conversion (see fullyRefunded).
 */
export const REFUND_EVENT = 'order.refunded';

/**
 * The properties the report reads: the decision's (what measureLift reads), and the
 * order's and refund's (which order, its total, the refund's own id: see fullyRefunded).
 * The rest (slots, items, products) is neither needed nor kept.
 */
const KEPT_PROPERTIES = [
  'decisionId',
  'experiment',
  'holdout',
  'eligible',
  'orderId',
  'refundId',
  'total',
] as const;

/**
 * An events row as measureLift reads it, or undefined when it cannot count. Its time is
 * the corrected one (the device's clock set right by the edge), as when the person acted;
 * only the properties measureLift reads are kept, so 200,000 rows stay small.
 */
export function windowedEventOf(row: EventLogRow): WindowedEvent | undefined {
  const { person_key: personId, name, received_at: received } = row;
  if (typeof personId !== 'string' || personId === '' || typeof name !== 'string') return undefined;
  const timestamp = [row.corrected_timestamp, row.timestamp].find(
    (t): t is string => typeof t === 'string' && Number.isFinite(Date.parse(t)),
  );
  const receivedAt = typeof received === 'string' ? Date.parse(received) : Number.NaN;
  if (timestamp === undefined || !Number.isFinite(receivedAt)) return undefined;
  const source = row.properties !== null && typeof row.properties === 'object' ? row.properties : {};
  const properties: Record<string, unknown> = {};
  for (const key of KEPT_PROPERTIES) {
    const value: unknown = (source as Record<string, unknown>)[key];
    if (value !== undefined) properties[key] = value;
  }
  const { anonymous_id: browser, user_id: userId } = row;
  const person = personId.startsWith('user:')
    ? personId
    : typeof userId === 'string' && userId !== ''
      ? `user:${userId}`
      : undefined;
  const signedIn =
    typeof browser === 'string' && browser !== '' && person !== undefined ? { browser, person } : undefined;
  return { event: { personId, name, timestamp, properties }, receivedAt, ...(signedIn && { signedIn }) };
}

/**
 * The events with each browser's events before sign-in filed under the person it signed in
 * as (`anon:<browser>` → `user:<id>`), as the edge merged them: a decision served before
 * sign-in and the order placed after it are one person's, or lift would count them as two
 * people, one exposed who never converted and one who converted unexposed. A browser seen
 * signed in as more than one person (a shared computer) is left as it is: whose its
 * anonymous events were cannot be told.
 */
export function joinedAtSignIn(events: readonly WindowedEvent[]): WindowedEvent[] {
  const personOf = new Map<string, string | null>();
  for (const { signedIn } of events) {
    if (signedIn === undefined) continue;
    const browser = `anon:${signedIn.browser}`;
    const { person } = signedIn;
    const known = personOf.get(browser);
    personOf.set(browser, known === undefined || known === person ? person : null);
  }
  if (personOf.size === 0) return [...events];
  return events.map((e) => {
    const person = personOf.get(e.event.personId);
    return typeof person === 'string' ? { ...e, event: { ...e.event, personId: person } } : e;
  });
}

/** Which order of which person an order or refund names (JSON: both ids may hold any character). */
function orderOf(event: LoggedEvent): string | undefined {
  const orderId = event.properties?.orderId;
  return typeof orderId === 'string' ? JSON.stringify([event.personId, orderId]) : undefined;
}

/**
 * The orders (orderOf) refunded in full: by a refund with no total, or by refunds whose
 * totals reach the order's. Taken as the ProfileDO takes them: each refundId once (a retry
 * or the same refund under another event id is the same refund), and one refund without a
 * refundId per order; a refund names its own person's order (one filed under someone else
 * undoes nothing of theirs). A partial refund leaves the conversion: the report counts
 * conversions, not revenue.
 */
function fullyRefunded(events: readonly WindowedEvent[]): Set<string> {
  const totals = new Map<string, number>();
  const refunds = new Map<string, Map<string | null, number>>();
  for (const { event } of events) {
    const order = orderOf(event);
    if (order === undefined) continue;
    const total = event.properties?.total;
    // No total: the whole order (as the schema says of a refund).
    const amount = typeof total === 'number' && Number.isFinite(total) ? total : Number.POSITIVE_INFINITY;
    if (event.name === 'order.completed') {
      if (!totals.has(order)) totals.set(order, amount);
    } else if (event.name === REFUND_EVENT) {
      const refundId = event.properties?.refundId;
      const taken = refunds.get(order) ?? new Map<string | null, number>();
      const key = typeof refundId === 'string' ? refundId : null;
      if (!taken.has(key)) taken.set(key, amount);
      refunds.set(order, taken);
    }
  }
  const full = new Set<string>();
  for (const [order, taken] of refunds) {
    let refunded = 0;
    for (const amount of taken.values()) refunded += amount;
    if (refunded >= (totals.get(order) ?? 0)) full.add(order);
  }
  return full;
}

/** The window of a run ending at `now`, `days` long. */
export function liftWindow(now: number, days: number): { start: number; end: number } {
  return { start: now - days * DAY_MS, end: now };
}

/**
 * The report rows of a window, one per experiment with exposed people. Counted: the
 * people with an eligible decision received in the window, and their conversions received
 * in the window, each attributed (by measureLift) to their latest decision within the
 * attribution window before it, which may precede the window (hence `events` reach back
 * that far). People exposed only before the window are left out: their conversions
 * belong to the window before. Both groups are cut the same way, so lift stays fair. An
 * order refunded in full by the window's end (fullyRefunded) is no conversion: a bought
 * and returned dress earned the shop nothing.
 */
export function liftRows(
  siteId: string,
  events: readonly WindowedEvent[],
  window: { start: number; end: number },
  run: { eventsRead: number; truncated: boolean; computedAt: string },
): LiftReportRow[] {
  const inWindow = (e: WindowedEvent) => e.receivedAt >= window.start && e.receivedAt < window.end;
  const decisions: WindowedEvent[] = [];
  const conversions: LoggedEvent[] = [];
  const conversionNames: ReadonlySet<string> = new Set(CONVERSION_EVENTS);
  const joined = joinedAtSignIn(events);
  const refunded = fullyRefunded(joined);
  const returned = (e: LoggedEvent) => e.name === 'order.completed' && refunded.has(orderOf(e) ?? '');
  for (const e of joined) {
    if (e.event.name === EDGE_EVENT.decisionServed) decisions.push(e);
    else if (conversionNames.has(e.event.name) && inWindow(e) && !returned(e.event))
      conversions.push(e.event);
  }
  // Who was exposed in the window, per experiment.
  const exposed = new Map<string, Set<string>>();
  for (const d of decisions) {
    const experiment = d.event.properties?.experiment;
    if (typeof experiment !== 'string' || experiment === '' || experiment.length > MAX_EXPERIMENT_CHARS)
      continue;
    if (!inWindow(d) || d.event.properties?.eligible === false) continue;
    const people = exposed.get(experiment) ?? new Set<string>();
    people.add(d.event.personId);
    exposed.set(experiment, people);
  }
  const windowStart = new Date(window.start).toISOString();
  const windowEnd = new Date(window.end).toISOString();
  const day = windowEnd.slice(0, 10);
  const days = Math.round((window.end - window.start) / DAY_MS);
  const rows: LiftReportRow[] = [];
  for (const [experiment, people] of [...exposed].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const theirs = decisions
      .filter((d) => d.event.properties?.experiment === experiment && people.has(d.event.personId))
      .map((d) => d.event);
    const report = measureLift([...theirs, ...conversions], experiment, { windowMs: ATTRIBUTION_WINDOW_MS });
    if (report.treatment.people + report.holdout.people === 0) continue;
    const difference = differenceInterval(report.treatment, report.holdout);
    const liftRange = liftInterval(report.treatment, report.holdout);
    rows.push({
      id: `${siteId}:${experiment}:${days}d:${day}`,
      site_id: siteId,
      experiment,
      window_start: windowStart,
      window_end: windowEnd,
      treatment_people: report.treatment.people,
      treatment_converters: report.treatment.converters,
      treatment_conversions: report.treatment.conversions,
      treatment_rate: report.treatment.rate,
      holdout_people: report.holdout.people,
      holdout_converters: report.holdout.converters,
      holdout_conversions: report.holdout.conversions,
      holdout_rate: report.holdout.rate,
      lift: report.lift,
      difference_low: difference?.low ?? null,
      difference_high: difference?.high ?? null,
      lift_low: liftRange?.low ?? null,
      lift_high: liftRange?.high ?? null,
      significant: difference === undefined ? null : excludesZero(difference),
      events_read: run.eventsRead,
      truncated: run.truncated,
      computed_at: run.computedAt,
    });
  }
  return rows;
}

/**
 * The site's decisions, conversions, refunds and sign-ins (IDENTIFY_EVENT) received from `since` to
 * `until`, oldest first, at most `max`. Keyset paging on the receive time, as downstream.ts
 * pages a person's events: rows the retention deletes meanwhile do not shift a page; rows
 * received at the boundary's very time are skipped by count.
 */
export async function readLiftEvents(
  directus: DirectusClient,
  siteId: string,
  since: number,
  until: number,
  options: { max?: number; pageSize?: number } = {},
): Promise<{ events: WindowedEvent[]; read: number; truncated: boolean }> {
  const max = options.max ?? MAX_LIFT_EVENTS;
  const pageSize = options.pageSize ?? LIFT_PAGE_SIZE;
  const scope = [
    { site_id: { _eq: siteId } },
    { name: { _in: [EDGE_EVENT.decisionServed, ...CONVERSION_EVENTS, REFUND_EVENT, IDENTIFY_EVENT] } },
    { received_at: { _gte: new Date(since).toISOString() } },
    { received_at: { _lt: new Date(until).toISOString() } },
  ];
  const events: WindowedEvent[] = [];
  let read = 0;
  let boundary: { at: string; read: number } | undefined;
  const pageAfter = (limit: number) =>
    directus.readItems<EventLogRow>('events', {
      filter: {
        _and: boundary === undefined ? scope : [...scope, { received_at: { _gte: boundary.at } }],
      },
      fields: READ_FIELDS,
      sort: ['received_at', 'id'],
      limit,
      ...(boundary !== undefined && { offset: boundary.read }),
    });
  for (;;) {
    const limit = Math.min(pageSize, max - read);
    // At the bound: truncated only if a row is left (a window of exactly `max` rows is whole).
    if (limit <= 0) return { events, read, truncated: (await pageAfter(1)).length > 0 };
    const page = await pageAfter(limit);
    read += page.length;
    for (const row of page) {
      const e = windowedEventOf(row);
      if (e !== undefined) events.push(e);
    }
    if (page.length < limit) return { events, read, truncated: false };
    const at = page[page.length - 1]?.received_at;
    if (typeof at !== 'string') return { events, read, truncated: false };
    const atBoundary = page.filter((row) => row.received_at === at).length;
    // A page all at one time adds to the rows read before at that time.
    boundary = { at, read: boundary?.at === at ? boundary.read + atBoundary : atBoundary };
  }
}

/** Writes the rows, replacing a same-day report of the same experiment. */
export async function upsertLiftReports(
  directus: DirectusClient,
  rows: readonly LiftReportRow[],
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const have = await directus.existingKeys(
      LIFT_REPORTS,
      rows.map((r) => r.id),
    );
    try {
      await directus.updateItems(
        LIFT_REPORTS,
        rows.filter((r) => have.has(r.id)),
      );
      await directus.createItems(
        LIFT_REPORTS,
        rows.filter((r) => !have.has(r.id)),
      );
      return;
    } catch (e) {
      // The cron and an operator's request the same day may both create a row: the second updates it.
      if (e instanceof DirectusError && e.conflict && attempt === 0) continue;
      throw e;
    }
  }
}

export interface LiftReportOptions {
  /** The window's length in days, ending at `now` (1–90; 28 by default). */
  days?: number;
  /** When the window ends (ms since the epoch); the time of the run by default. */
  now?: number;
  /** The Directus client; the Worker's (DIRECTUS_URL, DIRECTUS_TOKEN) by default. */
  directus?: DirectusClient;
  /** At most this many events read (MAX_LIFT_EVENTS by default). */
  maxEvents?: number;
}

/**
 * Measures lift over the site's last `days` days, writes one `lift_reports` row per
 * experiment and logs the outcome (`lift.reported`, counts only). Throws a DirectusError when Directus cannot be read or written.
 */
export async function reportLift(
  env: Env,
  siteId: string,
  options: LiftReportOptions = {},
): Promise<SiteLift> {
  const days = options.days ?? DEFAULT_LIFT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_LIFT_DAYS)
    throw new RangeError(`days must be a whole number from 1 to ${MAX_LIFT_DAYS}, not ${days}`);
  const now = options.now ?? Date.now();
  const directus = options.directus ?? directusFromEnv(env, { timeoutMs: 10_000 });
  const window = liftWindow(now, days);
  const { events, read, truncated } = await readLiftEvents(
    directus,
    siteId,
    window.start - ATTRIBUTION_WINDOW_MS,
    window.end,
    options.maxEvents === undefined ? {} : { max: options.maxEvents },
  );
  const computedAt = new Date().toISOString();
  const reports = liftRows(siteId, events, window, { eventsRead: read, truncated, computedAt });
  await upsertLiftReports(directus, reports);
  // Counts only: a report holds no person.
  log('info', 'lift.reported', { siteId, experiments: reports.length, eventsRead: read, truncated });
  return {
    siteId,
    days,
    windowStart: new Date(window.start).toISOString(),
    windowEnd: new Date(window.end).toISOString(),
    eventsRead: read,
    truncated,
    computedAt,
    reports,
  };
}
