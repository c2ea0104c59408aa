/**
 * How queue messages become Directus rows (and stored events become profile inputs
 * again, for replay). Pure functions: no I/O, so the unit layer covers them without
 * Directus.
 */
import {
  type ConsentMessage,
  type ConsentState,
  type CustomerAction,
  DEFAULT_POLICY_VERSION,
  type Enrichment,
  type ErasureMessage,
  type ErasureReason,
  type EventMessage,
  type JsonValue,
  type ProfileMessage,
} from '@attune/shared-schema';
import { withPageFacts } from '../enrich/index.ts';
import { parsePersonKey } from '../identity/index.ts';
import type { ProfileEventInput } from '../profile/types.ts';

/** A row of the `events` collection. */
export interface EventRow {
  id: string;
  site_id: string;
  person_key: string;
  type: CustomerAction['type'];
  name: string;
  timestamp: string;
  corrected_timestamp: string;
  received_at: string;
  anonymous_id: string;
  user_id: string | null;
  session_id: string | null;
  schema_version: number;
  properties: Record<string, JsonValue> | null;
  traits: Record<string, JsonValue> | null;
  /** The context subset worth keeping: page, locale, timezone, campaign, library, consent. */
  context: Record<string, unknown> | null;
  enrichment: Enrichment;
  purposes: string[];
}

/** A row of the `people` collection. */
export interface PersonRow {
  id: string;
  site_id: string;
  person_key: string;
  version: number;
  anonymous_ids: string[];
  user_id: string | null;
  traits: Record<string, unknown>;
  interests: Record<string, number>;
  segments: string[];
  counters: Record<string, number>;
  consent: unknown;
  first_seen: string;
  last_seen: string;
}

/** A row of the `consent_records` collection (proof of one choice). */
export interface ConsentRow {
  id: string;
  site_id: string;
  person_key: string;
  /** What the edge enforced of the choice (normalized against the site's categories, GPC applied). */
  categories: Record<string, boolean>;
  /** The answers as the person gave them under `policy_version`; null for messages queued before they were sent. */
  claimed: Record<string, boolean> | null;
  policy_version: string;
  source: string;
  recorded_at: string;
  /** When the person made the choice; `recorded_at` for messages queued before it was sent. */
  chosen_at: string;
  /** Whether Global Privacy Control was in force for the choice; null (unknown) for messages queued before it was sent. */
  gpc: boolean | null;
}

/** A row of `erasure_proofs`: that and when, never who or what (how it is kept: erasure-proof.ts). */
export interface ErasureProofRow {
  /** The erasure id the DELETE answered (the queue message id for an erasure queued before ids). */
  id: string;
  site_id: string;
  /** `request` (DELETE /v1/people/:id) or `retention` (inactive past the period); null when the message did not say. */
  reason: ErasureReason | null;
  requested_at: string;
  /** When the erasure was done; null while it is under way (the counts are what it deleted so far). */
  erased_at: string | null;
  people_deleted: number;
  events_deleted: number;
  consent_records_deleted: number;
  dead_letters_deleted: number;
  /** The person's orders whose user and browser ids were cleared (the orders themselves stay). */
  orders_anonymized: number;
}

/** A row of `dead_letters`: a queue message the sync could not write, kept for someone to look at. */
export interface DeadLetterRow {
  /** The dead-letter queue's message id: stable across its redeliveries. */
  id: string;
  site_id: string | null;
  /** Whom the message is about, so an erasure deletes it too (null when it names nobody readable). */
  person_key: string | null;
  reason: string;
  /** Deliveries of the original message before it was set aside (null when the queue gave up on it). */
  attempts: number | null;
  failed_at: string;
  /** The original message body, as JSON. */
  message: unknown;
}

/**
 * How the reason of a dead letter holding an erasure begins: the retention cron keeps such
 * letters, however old (deleted, the only record that the person's rows still wait to be
 * erased would be gone, and their rows would stay for good).
 */
export const PENDING_ERASURE = 'erasure not done';

/** Why a message the queue dead-lettered by itself is there: the sync never set it aside. */
export const RETRIES_EXHAUSTED =
  'retries exhausted: Directus was unavailable or failing for the whole retry period (max_retries)';

/** What the sync's DLQ letters carry (sync/consumer.ts `DeadLetter`). */
function isLetter(
  v: unknown,
): v is { reason: string; attempts?: unknown; failedAt?: unknown; body: unknown } {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as { reason?: unknown }).reason === 'string' &&
    'body' in v
  );
}

/** A body as JSON Directus can store: a value JSON cannot hold is kept as its text. */
function asJson(body: unknown): unknown {
  try {
    const text = JSON.stringify(body);
    return text === undefined ? null : JSON.parse(text);
  } catch {
    return String(body);
  }
}

/**
 * The row for one message of the dead-letter queue: either a letter the sync sent (the
 * original body with its reason) or a message the queue moved there itself after its
 * last retry.
 */
export function deadLetterRow(delivery: { id: string; body: unknown }, now: number): DeadLetterRow {
  const letter = isLetter(delivery.body) ? delivery.body : undefined;
  const original = letter ? letter.body : delivery.body;
  const envelope =
    original !== null && typeof original === 'object' ? (original as Record<string, unknown>) : {};
  const siteId = envelope.siteId;
  const personId = envelope.personId;
  const failedAt = letter?.failedAt;
  const attempts = letter?.attempts;
  return {
    id: delivery.id.slice(0, 64),
    site_id: typeof siteId === 'string' && siteId.length <= 255 ? siteId : null,
    person_key: typeof personId === 'string' ? (parsePersonKey(personId) ?? null) : null,
    reason: letter ? letter.reason.slice(0, 2000) : RETRIES_EXHAUSTED,
    attempts: typeof attempts === 'number' && Number.isSafeInteger(attempts) ? attempts : null,
    failed_at: isTime(failedAt) ? (failedAt as string) : new Date(now).toISOString(),
    message: asJson(original),
  };
}

/** One row per person per site: the key joins both, as a person key is only unique within a site. */
export function personRowId(siteId: string, personKey: string): string {
  return `${siteId}:${personKey}`;
}

const CONTEXT_KEPT = ['page', 'locale', 'timezone', 'campaign', 'library', 'consent'] as const;

export function eventRow(msg: EventMessage): EventRow {
  const e = msg.event;
  let context: Record<string, unknown> | null = null;
  if (e.context) {
    // Derived here, off the ingest path, where it would add to every request's latency.
    const full = withPageFacts(e.context);
    const kept: Record<string, unknown> = {};
    for (const key of CONTEXT_KEPT) if (full[key] !== undefined) kept[key] = full[key];
    context = Object.keys(kept).length > 0 ? kept : null;
  }
  return {
    id: e.id,
    site_id: msg.siteId,
    person_key: msg.personId,
    type: e.type,
    name: e.name,
    timestamp: e.timestamp,
    corrected_timestamp: msg.enrichment.correctedTimestamp,
    received_at: msg.enrichment.receivedAt,
    anonymous_id: e.anonymousId,
    user_id: e.userId ?? null,
    session_id: e.sessionId ?? null,
    schema_version: e.schemaVersion,
    properties: e.properties ?? null,
    traits: e.traits ?? null,
    context,
    enrichment: msg.enrichment,
    purposes: [...msg.purposes],
  };
}

export function consentRow(msg: ConsentMessage): ConsentRow {
  return {
    id: msg.eventId,
    site_id: msg.siteId,
    person_key: msg.personId,
    categories: msg.consent.categories,
    claimed: msg.claimed ?? null,
    policy_version: msg.consent.policyVersion,
    source: msg.source,
    recorded_at: msg.recordedAt,
    chosen_at: msg.chosenAt ?? msg.recordedAt,
    gpc: msg.gpc ?? null,
  };
}

export function personRow(msg: ProfileMessage): PersonRow {
  const p = msg.profile;
  return {
    id: personRowId(msg.siteId, msg.personId),
    site_id: msg.siteId,
    person_key: msg.personId,
    version: msg.version,
    anonymous_ids: p.anonymousIds,
    user_id: p.userId ?? null,
    traits: p.traits ?? {},
    interests: p.interests ?? {},
    segments: p.segments ?? [],
    counters: p.counters ?? {},
    consent: p.consent ?? null,
    first_seen: p.firstSeen,
    last_seen: p.lastSeen,
  };
}

/** Latest state wins: of several snapshots of one person in a batch, the highest version. */
export function latestProfiles(messages: readonly ProfileMessage[]): Map<string, ProfileMessage> {
  const latest = new Map<string, ProfileMessage>();
  for (const m of messages) {
    const id = personRowId(m.siteId, m.personId);
    const prev = latest.get(id);
    if (!prev || newerSnapshot(snapshotOrder(m), snapshotOrder(prev))) latest.set(id, m);
  }
  return latest;
}

/** What orders two snapshots of one person's row (a stored row's times may be missing). */
export interface SnapshotOrder {
  version: number;
  first_seen?: string | null;
  last_seen?: string | null;
}

const snapshotOrder = (m: ProfileMessage): SnapshotOrder => ({
  version: m.version,
  first_seen: m.profile.firstSeen,
  last_seen: m.profile.lastSeen,
});

/**
 * How far apart two lives of a person are at least (a retention period or a tombstone lies
 * between them), so that a database keeping times to the second, not the millisecond,
 * never makes two snapshots of one life look like two lives.
 */
const LIVES_APART_MS = 60_000;

/**
 * Whether snapshot `a` of a person's row replaces `b`: the higher version, unless the two
 * are of different lives of the person. A profile first seen after the other was last seen
 * is a later one whatever its version: the person came back after retention (or an
 * erasure's tombstone) wiped their ProfileDO, which numbers from 1 again. (Before, the
 * return's snapshots lost to the old row's higher version, and once the erasure deleted
 * that row the person had none until their next snapshot.) Within one life, first seen
 * only moves earlier (a merge) and last seen later, so this never reorders it.
 */
export function newerSnapshot(a: SnapshotOrder, b: SnapshotOrder): boolean {
  const after = (x: string | null | undefined, y: string | null | undefined) =>
    typeof x === 'string' && typeof y === 'string' && Date.parse(x) > Date.parse(y) + LIVES_APART_MS;
  if (after(a.first_seen, b.last_seen)) return true;
  if (after(b.first_seen, a.last_seen)) return false;
  return a.version > b.version;
}

/** Every person key a person was known by (anonymous ids, user id, the key itself): what erasure and access cover. */
export function erasedPersonKeys<T extends Pick<ErasureMessage, 'personId' | 'anonymousIds' | 'userId'>>(
  msg: T,
): string[] {
  const keys = new Set<string>([msg.personId]);
  for (const a of msg.anonymousIds) keys.add(`anon:${a}`);
  if (msg.userId) keys.add(`user:${msg.userId}`);
  return [...keys];
}

/**
 * Which of a site's `orders` rows are the person's, by the ids their keys carry (an order
 * records the buyer's user id and browser id, not a person key); undefined when the keys
 * carry none, as an empty `_in` is no filter Directus can be trusted with. By a browser id
 * only an order placed signed out: a browser merged into this person stays theirs at the
 * edge, but someone else may sign in on it (a shared computer), and that order is theirs.
 * With `unsitedAreTheSite`, orders without a `site_id` count as the site's: the order Flow
 * sends them as its site's, and a Worker serving one site can only mean that one.
 */
export function personOrdersFilter(
  siteId: string,
  personKeys: readonly string[],
  unsitedAreTheSite = false,
): Record<string, unknown> | undefined {
  const idsOf = (prefix: string) =>
    personKeys
      .filter((k) => k.startsWith(prefix) && k.length > prefix.length)
      .map((k) => k.slice(prefix.length));
  const userIds = idsOf('user:');
  const anonymousIds = idsOf('anon:');
  const whose = [
    ...(userIds.length > 0 ? [{ user_id: { _in: userIds } }] : []),
    ...(anonymousIds.length > 0
      ? [
          {
            _and: [{ anonymous_id: { _in: anonymousIds } }, { user_id: { _empty: true } }],
          },
        ]
      : []),
  ];
  if (whose.length === 0) return undefined;
  const site = unsitedAreTheSite
    ? { _or: [{ site_id: { _eq: siteId } }, { site_id: { _empty: true } }] }
    : { site_id: { _eq: siteId } };
  return { _and: [site, { _or: whose }] };
}

const isTime = (s: unknown): boolean => typeof s === 'string' && Number.isFinite(Date.parse(s));

/**
 * Why a valid queue message still cannot become a row (Directus would fail on it with a
 * 500, forever), or undefined when it can. Such a message is poison: dead-lettered.
 */
export function rowProblem(
  msg: EventMessage | ConsentMessage | ProfileMessage | ErasureMessage,
): string | undefined {
  const times: [string, unknown][] =
    msg.kind === 'event'
      ? [
          ['event.timestamp', msg.event.timestamp],
          ['enrichment.receivedAt', msg.enrichment.receivedAt],
          ['enrichment.correctedTimestamp', msg.enrichment.correctedTimestamp],
        ]
      : msg.kind === 'consent'
        ? [
            ['recordedAt', msg.recordedAt],
            ...(msg.chosenAt === undefined ? [] : [['chosenAt', msg.chosenAt] as [string, unknown]]),
          ]
        : msg.kind === 'profile'
          ? [
              ['profile.firstSeen', msg.profile.firstSeen],
              ['profile.lastSeen', msg.profile.lastSeen],
            ]
          : [['requestedAt', msg.requestedAt]];
  for (const [path, value] of times) if (!isTime(value)) return `${path} is not a date-time`;
  return undefined;
}

/** Queue retry backoff: 5 s, 10 s, 20 s … capped at 15 min, so an outage is waited out, not hammered. */
export function retryDelaySeconds(attempts: number): number {
  const n = Math.max(1, Math.floor(attempts));
  return Math.min(900, 5 * 2 ** Math.min(n - 1, 12));
}

function isJsonMap(v: unknown): v is Record<string, JsonValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A stored event as its ProfileDO saw it: the CustomerAction (with the kept context),
 * the edge's enrichment, and whether it may build the profile. Used by replay.
 */
export function profileInputFromRow(row: EventRow): ProfileEventInput {
  const event: CustomerAction = {
    id: row.id,
    type: row.type,
    name: row.name,
    timestamp: row.timestamp,
    anonymousId: row.anonymous_id,
    schemaVersion: 1,
  };
  if (row.user_id) event.userId = row.user_id;
  if (row.session_id) event.sessionId = row.session_id;
  if (isJsonMap(row.properties)) event.properties = row.properties;
  if (isJsonMap(row.traits)) event.traits = row.traits;
  if (isJsonMap(row.context)) event.context = row.context as CustomerAction['context'];
  const purposes = Array.isArray(row.purposes) ? row.purposes : [];
  // The consent the event was accepted under, as its granted purposes recorded it.
  const claimed = event.context?.consent?.policyVersion;
  const consent: ConsentState = {
    categories: {
      necessary: true,
      analytics: purposes.includes('analytics'),
      personalization: purposes.includes('personalization'),
      marketing: purposes.includes('marketing'),
    },
    policyVersion: typeof claimed === 'string' && claimed !== '' ? claimed : DEFAULT_POLICY_VERSION,
  };
  return {
    event,
    enrichment: row.enrichment,
    personalization: purposes.includes('personalization'),
    consent,
  };
}
