/**
 * The EVENTS queue consumer: syncs a batch of queue messages into Directus.
 *
 * - Events, consent records and profiles are written in bulk: one existence check and
 *   one create per collection per batch; one profile upsert per person (highest version).
 * - Idempotent under redelivery: event ids and consent event ids are primary keys, and
 *   existing keys are skipped, so a redelivered message writes nothing twice.
 * - Per-message outcome: ack on success, retry with a growing delay when Directus is
 *   unreachable or failing (5xx, 429), dead-letter queue (with the reason) for a poison
 *   message: one that fails QueueMessageSchema, or that Directus rejects permanently
 *   (4xx). A bulk write rejected as a whole is retried item by item, so one bad item
 *   never holds back the rest of its batch.
 * - An `events` message (a run of one person's events) is settled as a whole, but its
 *   events are written one by one as part of the bulk writes: an event Directus rejects
 *   (or that is malformed) goes to the DLQ alone, as a single `event` message with the
 *   reason, and the message is acked once each of its events is written or
 *   dead-lettered; if Directus is unavailable the whole message is retried (writes are
 *   idempotent, so its events already written are skipped on redelivery).
 * - Erasure deletes the person's profile, events, consent records and dead letters received
 *   up to its request (a person come back after a retention erasure keeps what they send
 *   since), anonymises their orders of that time when they asked for it (the shop keeps
 *   them, without whose they were) and leaves a proof (that, when and why, not who or what),
 *   which counts what every attempt of a retried erasure did (erasure-proof.ts).
 */
import {
  type ConsentMessage,
  type CovisitMessage,
  type ErasureMessage,
  type EventMessage,
  eventMessageOf,
  type ProfileMessage,
  type QueueMessage,
  QueueMessageSchema,
} from '@attune/shared-schema';
import type { CovisitDelivery } from '../decide/covisitation.ts';
import {
  type DirectusClient,
  DirectusError,
  directusFromEnv,
  isPermanent,
  retryCause,
  withoutQuotedValues,
} from '../directus/client.ts';
import { parsePersonKey } from '../identity/index.ts';
import { settledWithin } from '../ingest/queue-producer.ts';
import { isErased } from '../profile/client.ts';
import type { PersonKey } from '../profile/types.ts';
import { ownsUnsitedRows } from '../sites/index.ts';
import { openErasureProof, type ProofCount } from './erasure-proof.ts';
import {
  consentRow,
  erasedPersonKeys,
  eventRow,
  latestProfiles,
  newerSnapshot,
  PENDING_ERASURE,
  type PersonRow,
  personOrdersFilter,
  personRow,
  personRowId,
  retryDelaySeconds,
  rowProblem,
  type SnapshotOrder,
} from './mapping.ts';

/**
 * After this many deliveries, a bulk write that keeps failing with a 5xx is retried item
 * by item, so an item Directus chokes on cannot hold its whole batch hostage.
 */
export const ISOLATE_AFTER_ATTEMPTS = 3;

/**
 * Rows per write request at most: the bulk events endpoint takes up to 1000
 * (services/directus/extensions/attune-sync, MAX_ROWS). A batch of 100 `events` messages
 * may carry up to 10,000 events.
 */
export const ROWS_PER_WRITE = 1000;

/** What a dead-lettered message carries: the original body and why it was set aside. */
export interface DeadLetter {
  reason: string;
  messageId: string;
  attempts: number;
  failedAt: string;
  body: unknown;
}

/** Counts of one batch's outcome, for logs and tests. */
export interface SyncReport {
  acked: number;
  retried: number;
  deadLettered: number;
  eventsWritten: number;
  consentRecordsWritten: number;
  profilesWritten: number;
  erasures: number;
}

/** Whether a person was erased; by default their ProfileDO's tombstone says so. */
export type ErasureCheck = (env: Env, siteId: string, personKey: PersonKey) => Promise<boolean>;

export interface SyncOptions {
  /** Replaces the tombstone lookup (tests of other behaviour). */
  isErased?: ErasureCheck;
  /**
   * Called with the "viewed next" pairs of a batch (aggregate, person-free), per queue
   * message: counting is idempotent per message id, so a redelivery counts nothing twice.
   */
  applyCovisits?: (env: Env, deliveries: CovisitDelivery[]) => Promise<unknown>;
  /** The Directus client; by default DIRECTUS_URL with DIRECTUS_TOKEN. */
  directus?: DirectusClient;
}

type Msg = Message<unknown>;
type Parsed<T extends QueueMessage> = { msg: Msg; body: T };

function errorReason(e: unknown): string {
  if (e instanceof Error) return e.message.slice(0, 500);
  return String(e).slice(0, 500);
}

/** Whether a failed bulk write should be split into one write per item. */
function shouldIsolate(e: unknown, items: readonly { msg: Msg }[]): boolean {
  if (isPermanent(e)) return true;
  return (
    e instanceof DirectusError &&
    e.status >= 500 &&
    items.some((i) => i.msg.attempts >= ISOLATE_AFTER_ATTEMPTS)
  );
}

/**
 * Whether a failed write says Directus as a whole is unavailable (unreachable, overloaded,
 * its proxy without an upstream), not that one row made it fail (a 500): writing the rest
 * of a batch row by row would only send it one failing request per message.
 */
function isOutage(e: unknown): boolean {
  return e instanceof DirectusError && [0, 401, 403, 408, 429, 502, 503, 504].includes(e.status);
}

/** Settles each message once, whatever the code paths do. */
class Outcomes {
  readonly report: SyncReport = {
    acked: 0,
    retried: 0,
    deadLettered: 0,
    eventsWritten: 0,
    consentRecordsWritten: 0,
    profilesWritten: 0,
    erasures: 0,
  };
  #settled = new Set<string>();
  /** While set (see deferAcks), messages to ack once their people are checked again. */
  #deferred: Msg[] | undefined;
  /** Per message carrying several events: how many are neither written nor dead-lettered yet. */
  #openParts = new Map<string, number>();
  /** Letters for single events of such messages, held until the rest is written (see deadLetter). */
  #heldLetters = new Map<string, { msg: Msg; letters: DeadLetter[] }>();
  readonly #env: Env;

  constructor(env: Env) {
    this.#env = env;
  }

  #first(msg: Msg): boolean {
    if (this.#settled.has(msg.id)) return false;
    this.#settled.add(msg.id);
    return true;
  }

  /** Declares that `msg` carries `parts` events, each settled on its own (acked when all are). */
  expectParts(msg: Msg, parts: number): void {
    this.#openParts.set(msg.id, parts);
  }

  isSettled(msg: Msg): boolean {
    return this.#settled.has(msg.id);
  }

  /** Acks the message, or for a message of several events, one of its events. */
  ack(msg: Msg): void {
    const open = this.#openParts.get(msg.id);
    if (open !== undefined && !this.#settled.has(msg.id)) {
      if (open > 1) {
        this.#openParts.set(msg.id, open - 1);
        return;
      }
      this.#openParts.delete(msg.id);
      // Its dead-lettered events go out first; sendHeldLetters then acks the message.
      if (this.#heldLetters.has(msg.id)) return;
    }
    if (!this.#first(msg)) return;
    if (this.#deferred) this.#deferred.push(msg);
    else {
      msg.ack();
      this.report.acked++;
    }
  }

  /** From now on, acks wait for releaseAcks (the messages count as settled meanwhile). */
  deferAcks(): void {
    this.#deferred ??= [];
  }

  /** The messages whose acks wait for releaseAcks. */
  deferredMessages(): Msg[] {
    return [...(this.#deferred ?? [])];
  }

  /** Acks the deferred messages, or retries those `fate` says to. */
  releaseAcks(fate: (msg: Msg) => 'ack' | 'retry'): void {
    const deferred = this.#deferred ?? [];
    this.#deferred = undefined;
    for (const msg of deferred) {
      if (fate(msg) === 'retry') {
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
        this.report.retried++;
      } else {
        msg.ack();
        this.report.acked++;
      }
    }
  }

  /**
   * Why the first message of this batch was retried, for the batch's log line: counts alone
   * do not tell an operator a wrong DIRECTUS_URL or token from an outage, and the retries go
   * on for a day. Told by retryCause: no query, no value Directus quotes, so no person keys.
   */
  get cause(): string | undefined {
    return this.#cause;
  }
  #cause: string | undefined;

  /** Keeps the first reason a retry was for (see `cause`). */
  noteCause(e: unknown): void {
    this.#cause ??= retryCause(e);
  }

  retry(msg: Msg, cause?: unknown): void {
    if (cause !== undefined) this.noteCause(cause);
    if (!this.#first(msg)) return;
    msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    this.report.retried++;
  }

  /**
   * Sends the message to the DLQ with its reason, then acks it; retries if the DLQ is
   * unavailable, or does not answer within QUEUE_SEND_BUDGET_MS (held, the send kept the
   * whole batch until the runtime ended it; a letter that lands after all is written again
   * on the redelivery, a second row for the same message). For one event of a message of
   * several (`part`, its single-event body), dead-letters only that event and counts it as
   * settled, but holds the letter until the
   * rest of the message is written (sendHeldLetters): if another of its events is retried,
   * the whole message comes back and this event is judged again, so a letter sent at once
   * would reach the DLQ again on every delivery. When the retries run out, the queue
   * dead-letters the whole message, this event with it.
   */
  async deadLetter(msg: Msg, reason: string, part?: unknown): Promise<void> {
    if (this.#settled.has(msg.id)) return;
    const single = part !== undefined && this.#openParts.has(msg.id);
    const letter: DeadLetter = {
      reason,
      messageId: msg.id,
      attempts: msg.attempts,
      failedAt: new Date().toISOString(),
      body: single ? part : msg.body,
    };
    if (single) {
      const held = this.#heldLetters.get(msg.id);
      if (held) held.letters.push(letter);
      else this.#heldLetters.set(msg.id, { msg, letters: [letter] });
      this.ack(msg);
      return;
    }
    try {
      await settledWithin(this.#env.EVENTS_DLQ.send(letter));
    } catch (e) {
      this.retry(msg, e);
      return;
    }
    if (this.#settled.has(msg.id)) return;
    this.#countLetter(letter);
    this.#first(msg);
    msg.ack();
  }

  #countLetter(letter: DeadLetter): void {
    this.report.deadLettered++;
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: 'sync.dead_lettered',
        reason: withoutQuotedValues(letter.reason).slice(0, 200),
      }),
    );
  }

  /** The messages holding letters, whose people the erasure check must cover too. */
  heldMessages(): Msg[] {
    return [...this.#heldLetters.values()].map((held) => held.msg);
  }

  /**
   * For each message whose other events are all written: sends its held letters, then
   * acks it (retries it if the DLQ is unavailable: its letters sent so far would go again).
   * A message retried meanwhile drops its letters: its redelivery judges those events again.
   * `fate` may say otherwise per message: `drop` (its person is erased: their events go
   * nowhere, the DLQ included; the message is acked) or `retry`.
   */
  async sendHeldLetters(fate: (msg: Msg) => 'send' | 'drop' | 'retry' = () => 'send'): Promise<void> {
    for (const [id, { msg, letters }] of this.#heldLetters) {
      this.#heldLetters.delete(id);
      if (this.#settled.has(id)) continue;
      const decided = fate(msg);
      if (this.#openParts.has(id) || decided === 'retry') {
        // Not every event of it was settled: never ack a message with an event unaccounted for.
        this.retry(msg);
        continue;
      }
      if (decided === 'drop') {
        this.ack(msg);
        continue;
      }
      try {
        // One at a time: a letter holds up to a whole event (32 KB), a sendBatch 256 KB.
        for (const letter of letters) await settledWithin(this.#env.EVENTS_DLQ.send(letter));
      } catch (e) {
        this.retry(msg, e);
        continue;
      }
      for (const letter of letters) this.#countLetter(letter);
      this.ack(msg);
    }
  }

  /** Settles a group after a failed write: retryable errors retry all of it. */
  retryAll(items: readonly { msg: Msg }[], cause?: unknown): void {
    for (const { msg } of items) this.retry(msg, cause);
  }
}

/**
 * Writes rows keyed by their primary key (existing keys skipped) in one request. If
 * Directus rejects the bulk write permanently, falls back to one request per row so
 * the poison row goes to the DLQ and the others are written.
 */
async function writeRowsOnce<T extends { msg: Msg; body: unknown }>(
  directus: DirectusClient,
  out: Outcomes,
  collection: string,
  items: readonly T[],
  toRow: (item: T) => Record<string, unknown>,
): Promise<number> {
  const createMissing = (rows: Record<string, unknown>[]) =>
    collection === 'events' ? directus.insertEvents(rows) : directus.createMissing(collection, rows);
  if (items.length === 0) return 0;
  if (items.length > ROWS_PER_WRITE) {
    // A batch of `events` messages can hold more rows than one write request may carry.
    let created = 0;
    for (let i = 0; i < items.length; i += ROWS_PER_WRITE)
      created += await writeRowsOnce(directus, out, collection, items.slice(i, i + ROWS_PER_WRITE), toRow);
    return created;
  }
  // Duplicate keys within one batch (a message delivered twice) are written once.
  const unique = new Map<string, Record<string, unknown>>();
  for (const item of items) {
    const row = toRow(item);
    unique.set(String(row.id), row);
  }
  try {
    const created = await createMissing([...unique.values()]);
    for (const { msg } of items) out.ack(msg);
    return created;
  } catch (e) {
    if (!shouldIsolate(e, items)) {
      out.retryAll(items, e);
      return 0;
    }
  }
  let created = 0;
  for (const [index, item] of items.entries()) {
    // Its message is already to be retried (another of its events): redelivery writes it.
    if (out.isSettled(item.msg)) continue;
    try {
      created += await createMissing([toRow(item)]);
      out.ack(item.msg);
    } catch (e) {
      if (isPermanent(e))
        await out.deadLetter(
          item.msg,
          `Directus rejected the ${collection} row: ${errorReason(e)}`,
          item.body,
        );
      else if (isOutage(e)) {
        out.retryAll(items.slice(index), e);
        break;
      } else out.retry(item.msg, e);
    }
  }
  return created;
}

/** One upsert per person: creates new people, updates those whose stored version is older. */
async function writeProfiles(
  directus: DirectusClient,
  out: Outcomes,
  items: readonly Parsed<ProfileMessage>[],
): Promise<number> {
  if (items.length === 0) return 0;
  const latest = latestProfiles(items.map((i) => i.body));
  const rows = [...latest.values()].map(personRow);
  // A browser a signed-in person's snapshot lists was merged into them at sign-in (what it
  // had learned was folded in): its own row would keep that, and its old grant, after the
  // person withdraws or is cleared. It goes, and a late snapshot of it anywhere in the batch
  // is not written (also when the rows are written one by one: the person's write must not
  // be undone by the browser's after it).
  const mergedInBatch = new Set(rows.flatMap(mergedBrowserRows));
  /** The write of an instance without the extension's people route: read, compare, write. */
  const compareAndWrite = async (batch: PersonRow[]): Promise<number> => {
    // A stored row may have no version (one made in Directus without it): it counts as 0.
    const stored = await directus.readItems<
      Omit<SnapshotOrder, 'version'> & { id: string; version: number | null }
    >('people', {
      filter: { id: { _in: batch.map((r) => r.id) } },
      fields: ['id', 'version', 'first_seen', 'last_seen'],
      limit: -1,
    });
    const held = new Map(
      stored.map((s): [string, SnapshotOrder] => [s.id, { ...s, version: s.version ?? 0 }]),
    );
    const creates = batch.filter((r) => !held.has(r.id));
    // Latest state wins: an older snapshot arriving late never overwrites a newer one.
    const updates = batch.filter((r) => {
      const row = held.get(r.id);
      return row !== undefined && newerSnapshot(r, row);
    });
    await directus.createItems('people', creates);
    await directus.updateItems('people', updates);
    return creates.length + updates.length;
  };
  const write = async (snapshots: PersonRow[]): Promise<number> => {
    const merged = snapshots.flatMap(mergedBrowserRows);
    const batch = snapshots.filter((r) => !mergedInBatch.has(r.id));
    if (batch.length === 0) return 0;
    // Compared with the stored rows and written in one transaction where the extension can
    // (writeNewerPeople): two batches synced at once must not both compare with the same
    // stored version, or the older snapshot may be written last.
    const written = (await directus.writeNewerPeople(batch)) ?? (await compareAndWrite(batch));
    await directus.deleteItems('people', [...(await directus.existingKeys('people', merged))]);
    return written;
  };
  try {
    const n = await write(rows);
    for (const { msg } of items) out.ack(msg);
    return n;
  } catch (e) {
    if (!shouldIsolate(e, items)) {
      out.retryAll(items, e);
      return 0;
    }
  }
  let n = 0;
  for (const row of rows) {
    const mine = items.filter((i) => personRowId(i.body.siteId, i.body.personId) === row.id);
    try {
      n += await write([row]);
      for (const { msg } of mine) out.ack(msg);
    } catch (e) {
      if (isPermanent(e)) {
        for (const { msg } of mine)
          await out.deadLetter(msg, `Directus rejected the people row: ${errorReason(e)}`);
      } else if (isOutage(e)) {
        // Those acked already stay acked (settled once).
        out.retryAll(items, e);
        break;
      } else out.retryAll(mine, e);
    }
  }
  return n;
}

/** The people row ids of the browsers a signed-in person's row lists (merged into them). */
function mergedBrowserRows(row: PersonRow): string[] {
  if (!row.person_key.startsWith('user:')) return [];
  return row.anonymous_ids.map((id) => personRowId(row.site_id, `anon:${id}`));
}

/**
 * `keys` and the keys Directus's people rows for them record (their merged browsers, their
 * user id): what the edge no longer knows about a person (its state lost, say) Directus may.
 */
export async function withRecordedKeys(
  directus: DirectusClient,
  siteId: string,
  keys: string[],
): Promise<string[]> {
  const all = new Set(keys);
  const rows = await directus.readItems<{ anonymous_ids: unknown; user_id: unknown }>('people', {
    filter: { _and: [{ site_id: { _eq: siteId } }, { person_key: { _in: keys } }] },
    fields: ['anonymous_ids', 'user_id'],
    limit: -1,
  });
  const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128;
  for (const row of rows) {
    if (Array.isArray(row.anonymous_ids)) for (const a of row.anonymous_ids) if (id(a)) all.add(`anon:${a}`);
    if (id(row.user_id)) all.add(`user:${row.user_id}`);
  }
  return [...all];
}

/** Deletes what the sync writes under an erased person's key (their erasure deleted the rest). */
async function forgetWritten(directus: DirectusClient, siteId: string, personKey: PersonKey): Promise<void> {
  const mine = { _and: [{ site_id: { _eq: siteId } }, { person_key: { _eq: personKey } }] };
  await directus.deleteWhere('events', mine);
  await directus.deleteWhere('consent_records', mine);
  await directus.deleteWhere('people', mine);
}

/**
 * Deletes what Directus holds about an erased person, received up to the erasure's
 * `requestedAt` (their orders of that time are anonymised instead, unless the erasure is
 * retention's), and records that it happened and why: the proof, keyed by the erasure id, is
 * opened first and counts each step as it is done, so an attempt after a failure part-way
 * adds to what the earlier ones deleted; it is closed last, and a delivery that finds it
 * closed (the erasure done, its ack lost) does nothing (see erasure-proof.ts).
 *
 * Bounded by time: the retention alarm leaves no tombstone, so a person can come back while
 * their erasure still waits on the queue (Directus down), and what they send then is not
 * the erasure's to delete. An erasure by request (`DELETE`) leaves a tombstone that drops
 * everything after it, so for them the bound removes everything there is.
 *
 * `people` goes last: its rows record keys only Directus knows (merged browsers, the user
 * id), and a retry after a failure part-way must still find them to delete the rest.
 */
export async function erase(
  env: Env,
  directus: DirectusClient,
  item: { msg: { id: string }; body: ErasureMessage },
): Promise<void> {
  const { body, msg } = item;
  // Keyed by the erasure's own id, which the DELETE answered (a message queued before erasures
  // had one: by the queue message id); both are stable across redeliveries, so every attempt
  // of an erasure counts into one proof.
  const proof = await openErasureProof(directus, {
    id: (body.erasureId ?? msg.id).slice(0, 64),
    site_id: body.siteId,
    reason: body.reason ?? null,
    requested_at: body.requestedAt,
  });
  if (proof === undefined) return;
  /** Counts each page of a delete as soon as it is gone: a failure on the next loses nothing. */
  const counted = (count: ProofCount) => ({ onPage: (n: number) => proof.add(count, n) });
  const keys = await withRecordedKeys(directus, body.siteId, erasedPersonKeys(body));
  const theirs = [{ site_id: { _eq: body.siteId } }, { person_key: { _in: keys } }];
  // A row without the time is deleted: whose it is cannot be told, and privacy comes first.
  const upTo = (field: string) => ({
    _and: [...theirs, { _or: [{ [field]: { _lte: body.requestedAt } }, { [field]: { _null: true } }] }],
  });
  await directus.deleteWhere('events', upTo('received_at'), counted('events_deleted'));
  await directus.deleteWhere('consent_records', upTo('recorded_at'), counted('consent_records_deleted'));
  // What the sync could not write about them is theirs too. Not bounded: a letter's time is
  // when it failed, not when its message was received, and a letter held back for days
  // would otherwise outlive the erasure of what it carries.
  await directus.deleteWhere('dead_letters', { _and: theirs }, counted('dead_letters_deleted'));
  // Orders are the shop's business records (it may have to keep them for its accounts): they
  // stay, with whose they were cleared. Before `people`, whose rows name the keys to find them by.
  // Only for an erasure someone asked for: retention forgets what tracking learned about an
  // inactive person, not whom the shop sold to (a customer back after a year keeps their orders).
  // A message queued before erasures said why does not say it was asked for: orders stay.
  const ordersOfTheirs =
    body.reason === 'request'
      ? personOrdersFilter(body.siteId, keys, await ownsUnsitedRows(env, body.siteId))
      : undefined;
  if (ordersOfTheirs !== undefined) {
    const orders = await directus.updateWhere(
      'orders',
      {
        _and: [
          ordersOfTheirs,
          { _or: [{ created_at: { _lte: body.requestedAt } }, { created_at: { _null: true } }] },
        ],
      },
      { user_id: null, anonymous_id: null },
    );
    await proof.add('orders_anonymized', orders);
  }
  // A row whose profile began after the request is the person come back (their snapshot
  // replaced the old one). By its start, not its last event: the erased profile began before
  // the request whatever the clocks of the edge's machines say.
  await directus.deleteWhere('people', upTo('first_seen'), counted('people_deleted'));
  await proof.close();
}

/**
 * The events of an `events` message that failed validation, each as the single `event`
 * message it stands for, so each is judged on its own; undefined for any other body.
 */
function eventsOfMalformed(body: unknown): Record<string, unknown>[] | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { kind, events, ...envelope } = body as Record<string, unknown>;
  if (kind !== 'events' || !Array.isArray(events) || events.length === 0) return undefined;
  return events.map((item: unknown) => ({
    ...envelope,
    ...(item !== null && typeof item === 'object' ? item : { event: item }),
    kind: 'event',
  }));
}

/** Where and why a schema check failed, for a dead letter's reason: `path: message`. */
export function issueOf(result: {
  success: boolean;
  error?: { issues: { path: PropertyKey[]; message: string }[] };
}): string {
  const issue = result.error?.issues[0];
  const where = issue ? issue.path.join('.') || '(root)' : '(root)';
  return `${where}: ${issue?.message ?? 'unknown'}`;
}

/**
 * When the edge took in what a message carries: an erasure covers it when requested at or
 * after this. A profile snapshot by its person's last event: a snapshot of the erased
 * profile was last seen before the request, a person come back after it is seen again.
 */
function receivedAt(body: EventMessage | ConsentMessage | ProfileMessage): number {
  switch (body.kind) {
    case 'event':
      return Date.parse(body.enrichment.receivedAt);
    case 'consent':
      return Date.parse(body.recordedAt);
    case 'profile':
      return Date.parse(body.profile.lastSeen);
  }
}

/** One key per person of a site, for the batch's erasure bookkeeping. */
export function personSlot(siteId: string, personId: string): string {
  return `${siteId}\u0000${personId}`;
}

/**
 * The site and person a malformed message's envelope names, when they could be a real
 * site and person (the same rule as every person key): anything else names nobody, and no
 * Durable Object is asked about it.
 */
function personOf(body: unknown): { siteId: string; personKey: PersonKey } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { siteId, personId } = body as { siteId?: unknown; personId?: unknown };
  if (typeof siteId !== 'string' || siteId.length > 255 || typeof personId !== 'string') return undefined;
  const personKey = parsePersonKey(personId);
  return personKey === undefined ? undefined : { siteId, personKey };
}

/** Syncs one batch; every message is acked, retried or dead-lettered exactly once. */
export async function syncBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const out = new Outcomes(env);
  const directus = options.directus ?? directusFromEnv(env);
  const events: Parsed<EventMessage>[] = [];
  const consents: Parsed<ConsentMessage>[] = [];
  const profiles: Parsed<ProfileMessage>[] = [];
  const erasures: Parsed<ErasureMessage>[] = [];
  const covisits: Parsed<CovisitMessage>[] = [];
  // One event of an `events` message: a bad one is dead-lettered alone.
  const acceptEvent = async (msg: Msg, body: EventMessage): Promise<void> => {
    const problem = rowProblem(body);
    if (problem !== undefined) await out.deadLetter(msg, `invalid event message: ${problem}`, body);
    else events.push({ msg, body });
  };

  for (const msg of batch.messages) {
    const parsed = QueueMessageSchema.safeParse(msg.body);
    const singles = parsed.success ? undefined : eventsOfMalformed(msg.body);
    if (singles !== undefined) {
      // One malformed event must not take the others of its message to the DLQ.
      out.expectParts(msg, singles.length);
      for (const single of singles) {
        const one = QueueMessageSchema.safeParse(single);
        if (!one.success || one.data.kind !== 'event') {
          await out.deadLetter(msg, `invalid queue message at events item: ${issueOf(one)}`, single);
          continue;
        }
        await acceptEvent(msg, one.data as EventMessage);
      }
      continue;
    }
    if (!parsed.success) {
      await out.deadLetter(msg, `invalid queue message at ${issueOf(parsed)}`);
      continue;
    }
    const body = parsed.data as QueueMessage;
    const problem =
      body.kind === 'covisit' || body.kind === 'covisits' || body.kind === 'events'
        ? undefined
        : rowProblem(body);
    if (problem !== undefined) {
      await out.deadLetter(msg, `invalid ${body.kind} message: ${problem}`);
      continue;
    }
    switch (body.kind) {
      case 'event':
        events.push({ msg, body });
        break;
      case 'events':
        out.expectParts(msg, body.events.length);
        for (const item of body.events) await acceptEvent(msg, eventMessageOf(body, item));
        if (body.events.length === 0) out.ack(msg);
        break;
      case 'consent':
        consents.push({ msg, body });
        break;
      case 'profile':
        profiles.push({ msg, body });
        break;
      case 'erasure':
        erasures.push({ msg, body });
        break;
      case 'covisit':
        covisits.push({ msg, body });
        break;
      case 'covisits':
        // One message per request: counted as its pairs, settled as one message.
        for (const pair of body.pairs)
          covisits.push({ msg, body: { kind: 'covisit', siteId: body.siteId, ...pair } });
        if (body.pairs.length === 0) out.ack(msg);
        break;
    }
  }

  // A person erased in this batch: their messages received before the erasure was requested
  // would only be deleted again. Those received after it are someone come back (the retention
  // alarm leaves no tombstone) or, after a `DELETE`, dropped by the tombstone check below.
  const erasedUpTo = new Map<string, number>();
  for (const { body } of erasures) {
    const at = Date.parse(body.requestedAt);
    for (const key of erasedPersonKeys(body)) {
      const slot = personSlot(body.siteId, key);
      erasedUpTo.set(slot, Math.max(at, erasedUpTo.get(slot) ?? at));
    }
  }
  const coveredByErasure = (body: EventMessage | ConsentMessage | ProfileMessage): boolean => {
    const upTo = erasedUpTo.get(personSlot(body.siteId, body.personId));
    return upTo !== undefined && receivedAt(body) <= upTo;
  };
  // People whose tombstone stands (asked below).
  const erased = new Set<string>();
  // A person erased before this batch: the queue does not keep order, so a message sent
  // before the erasure (a retry, a slow batch) can arrive after it; writing it would bring
  // back what the erasure deleted. Their ProfileDO's tombstone outlives any redelivery.
  // When the check itself fails, the person's messages wait for a retry.
  const check = options.isErased ?? isErased;
  /**
   * Asks each person's tombstone: the erased are added to `erased`, and their rows the sync
   * wrote are deleted when `forget(key)`. Returns the people who could not be asked (or
   * whose rows could not be deleted): their messages are retried.
   */
  const askErased = async (
    who: Map<string, { siteId: string; personKey: PersonKey }>,
    forget: (key: string) => boolean,
  ): Promise<Set<string>> => {
    const failed = new Set<string>();
    await Promise.all(
      [...who].map(async ([key, { siteId, personKey }]) => {
        try {
          if (!(await check(env, siteId, personKey))) return;
          if (forget(key)) await forgetWritten(directus, siteId, personKey);
          erased.add(key);
        } catch (e) {
          out.noteCause(e);
          failed.add(key);
        }
      }),
    );
    return failed;
  };
  const people = new Map<string, { siteId: string; personKey: PersonKey }>();
  // People with a message delivered before: that delivery may have written rows it could not
  // confirm (see the second check below), which an erasure since then did not see.
  const redelivered = new Set<string>();
  for (const { msg, body } of [...events, ...consents, ...profiles]) {
    if (coveredByErasure(body)) continue;
    const key = personSlot(body.siteId, body.personId);
    people.set(key, { siteId: body.siteId, personKey: body.personId as PersonKey });
    if (msg.attempts > 1) redelivered.add(key);
  }
  // Messages whose every event was bad name their person only in their envelope.
  for (const msg of out.heldMessages()) {
    const person = personOf(msg.body);
    if (person === undefined) continue;
    const key = personSlot(person.siteId, person.personKey);
    if (!erasedUpTo.has(key)) people.set(key, person);
  }
  const unsure = await askErased(people, (key) => redelivered.has(key));
  const live = <T extends EventMessage | ConsentMessage | ProfileMessage>(items: Parsed<T>[]): Parsed<T>[] =>
    items.filter((i) => {
      const key = personSlot(i.body.siteId, i.body.personId);
      if (coveredByErasure(i.body)) out.ack(i.msg);
      else if (unsure.has(key)) out.retry(i.msg);
      else if (!erased.has(key)) return true;
      else out.ack(i.msg);
      return false;
    });

  // The event log serves the analytics purpose only (the Worker enforces it again here).
  const logged = live(events).filter((i) => {
    if (i.body.purposes.includes('analytics')) return true;
    out.ack(i.msg);
    return false;
  });

  const liveConsents = live(consents);
  const liveProfiles = live(profiles);

  // Erasures before the writes, one at a time: what they delete was received before them,
  // and a person come back since then writes their profile anew, not under the old row's
  // version (their ProfileDO numbers from 1 again).
  for (const item of erasures) {
    try {
      await erase(env, directus, item);
      out.ack(item.msg);
      out.report.erasures++;
    } catch (e) {
      if (isPermanent(e))
        await out.deadLetter(item.msg, `${PENDING_ERASURE}, Directus rejected it: ${errorReason(e)}`);
      else out.retry(item.msg, e);
    }
  }

  // Written messages are acked only after their people are asked again (below).
  out.deferAcks();
  const [eventsWritten, consentWritten, profilesWritten] = await Promise.all([
    writeRowsOnce(directus, out, 'events', logged, (i) => ({ ...eventRow(i.body) })),
    writeRowsOnce(directus, out, 'consent_records', liveConsents, (i) => ({ ...consentRow(i.body) })),
    writeProfiles(directus, out, liveProfiles),
  ]);
  // A person erased between the check above and the writes keeps what was written: their
  // erasure (another batch, running concurrently) may have deleted their rows before these
  // landed. Asked again now, the tombstone is there (it is set before the erasure message is
  // sent), so the rows go now. When that check or delete fails, the messages are retried and
  // their redelivery, finding the person erased, deletes the rows (see `redelivered`).
  // Only people something was written for: while Directus is down every write is retried,
  // and nobody needs asking. A message holding dead letters had its other events written.
  const written = new Map<string, { siteId: string; personKey: PersonKey }>();
  const heldAndOpen = out.heldMessages().filter((msg) => !out.isSettled(msg));
  for (const msg of [...out.deferredMessages(), ...heldAndOpen]) {
    const person = personOf(msg.body);
    if (person !== undefined) written.set(personSlot(person.siteId, person.personKey), person);
  }
  const unconfirmed = await askErased(written, () => true);
  out.releaseAcks((msg) => {
    const person = personOf(msg.body);
    return person !== undefined && unconfirmed.has(personSlot(person.siteId, person.personKey))
      ? 'retry'
      : 'ack';
  });
  out.report.eventsWritten = eventsWritten;
  out.report.consentRecordsWritten = consentWritten;
  out.report.profilesWritten = profilesWritten;

  if (covisits.length > 0) {
    if (options.applyCovisits) {
      // Per message, under its id: settled on their own, never with the Directus writes above.
      const byMessage = new Map<string, { msg: Msg; delivery: CovisitDelivery }>();
      for (const { msg, body } of covisits) {
        const known = byMessage.get(msg.id);
        if (!known) byMessage.set(msg.id, { msg, delivery: { messageId: msg.id, visits: [body] } });
        // The same message twice in one batch counts once.
        else if (known.msg === msg) known.delivery.visits.push(body);
      }
      try {
        await options.applyCovisits(
          env,
          [...byMessage.values()].map((m) => m.delivery),
        );
        for (const { msg } of covisits) out.ack(msg);
      } catch (e) {
        out.retryAll(covisits, e);
      }
    } else for (const { msg } of covisits) out.ack(msg);
  }

  // An erased person's bad events are not kept in the DLQ either.
  await out.sendHeldLetters((msg) => {
    const person = personOf(msg.body);
    if (person === undefined) return 'send';
    const key = personSlot(person.siteId, person.personKey);
    // Their bad events' times cannot be trusted: an erasure in this batch takes them all.
    if (erasedUpTo.has(key)) return 'drop';
    return unsure.has(key) || unconfirmed.has(key) ? 'retry' : erased.has(key) ? 'drop' : 'send';
  });

  if (out.report.retried > 0 || out.report.deadLettered > 0)
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: 'sync.batch',
        ...out.report,
        ...(out.cause !== undefined && { cause: out.cause }),
      }),
    );
  return out.report;
}
