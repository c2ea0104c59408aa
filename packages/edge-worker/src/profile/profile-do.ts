/**
 * ProfileDO: one Durable Object per person (SQLite-backed), holding that person's
 * ordered state. Events are applied in order and once (dedupe by id within a bounded
 * window); a verified identify merges the browser's anonymous profile into the person's
 * and leaves an alias behind; erasure leaves a tombstone that drops late events; an
 * alarm deletes a person inactive past the retention period.
 */

import { DurableObject } from 'cloudflare:workers';
import {
  type ConsentState,
  type CustomerAction,
  consentInForce,
  defaultConsent,
  type ErasureMessage,
  isGranted,
  LIMITS,
  type QueueMessage,
} from '@attune/shared-schema';
import { getConsentConfig } from '../config/consent-config.ts';
import { userIdOf } from '../identity/index.ts';
import { QueueSendError, sendMessages } from '../ingest/queue-producer.ts';
import { count, flushStats, log } from '../observability/index.ts';
import { configuredDays } from '../retention/days.ts';
import { getSiteById } from '../sites/index.ts';
import {
  applyEvent,
  type ConsentRecord,
  chosenLater,
  claimAfterWithdrawals,
  clearPersonalization,
  consentAfter,
  consentSource,
  DEFAULT_RULES,
  emptyProfile,
  gpcOfChoice,
  laterPromo,
  linkBrowserTo,
  MAX_BROWSERS,
  mergeProfiles,
  type ProfileRules,
  type ProfileState,
  toSummary,
  toView,
} from './model.ts';
import type { OfferedPromo, PersonKey, ProfileEventInput, ProfileSummary, ProfileView } from './types.ts';
import { newUlid } from './ulid.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A profile's retention when neither its site nor PROFILE_RETENTION_DAYS gives a usable one. */
const DEFAULT_PROFILE_RETENTION_DAYS = 395;
/** Dedupe window: ids seen within this time, at most SEEN_MAX of them. */
const SEEN_WINDOW_MS = 7 * DAY_MS;
const SEEN_MAX = 10_000;
/** Seen ids past the window are deleted at least this often (kv `seen_pruned`), however few events come. */
const SEEN_PRUNE_EVERY_MS = DAY_MS;
/** A tombstone outlives any event that could still be accepted (events older than 30 days are rejected). */
const TOMBSTONE_TTL_MS = LIMITS.maxEventAgeMs + DAY_MS;
/**
 * How long an order's seen-id (orderKey) is kept: as long as a tombstone, for the same
 * reason, since an event naming the order can be accepted until LIMITS.maxEventAgeMs after its
 * timestamp (the order's creation, whoever sends it). With the week of event ids, an order
 * marked `completed` more than a week after it was paid counted again: Directus's paid-order
 * Flow sends an order again when an update marks it paid or completed.
 */
const ORDER_SEEN_WINDOW_MS = TOMBSTONE_TTL_MS;
/** The seen-ids kept for ORDER_SEEN_WINDOW_MS (orderKey's; event ids are ULIDs: no colon). */
const ORDER_SEEN_IDS = "(id LIKE 'order:%' OR id LIKE 'refund:%')";
/** When a retention run that could not forget every merged browser is taken up again. */
const RETIRING_RETRY_MS = 60_000;
/**
 * A browser's copy of what it handed to its person (see handOver) is checked with the person
 * this long after the hand-over, and again every HANDING_RECHECK_MS while the person has not
 * taken it (their write failed, and no retry came yet); after HANDING_KEEP_MS without one the
 * hand-over is undone.
 */
const HANDING_CHECK_MS = 5 * 60_000;
const HANDING_RECHECK_MS = 60 * 60_000;
const HANDING_KEEP_MS = 7 * DAY_MS;
/**
 * How long a person's retention alarm waits at most, however far their retention date: the
 * site's period is read again at every alarm, so one shortened since (a privacy officer's
 * change) reaches a person whose alarm was set under the longer one within this time, not
 * only when their old date comes. The cost: an inactive person's object wakes once a week.
 */
const RETENTION_RECHECK_MS = 7 * DAY_MS;
/**
 * How long a replay may run before the alarm takes it for abandoned (the CLI died) and
 * finishes it with what it kept: a replay reads one person's events, minutes at most.
 */
const REPLAY_ABANDONED_MS = DAY_MS;
/**
 * Messages the queue refused (see park) are sent again by the alarm this long after they
 * were parked, then twice as long after each failed try, up to PARKED_RETRY_MAX_MS apart.
 * After PARKED_KEEP_MS a message is given up (counted `queue_failed`): the queue keeps an
 * undelivered message four days, so an outage longer than that is an incident, not a blip.
 */
const PARKED_RETRY_MS = 10_000;
const PARKED_RETRY_MAX_MS = 15 * 60_000;
const PARKED_KEEP_MS = 4 * DAY_MS;
/**
 * At most this many parked messages are sent per alarm, the oldest first; the alarm comes
 * back a second later for the rest. The resend holds the person's turn (an erasure must
 * wait for it), so a long outage's backlog must not hold their next batch for long.
 */
const PARKED_PER_ALARM = 500;
/** When one alarm could not send all that was parked, the next comes this much later. */
const PARKED_NEXT_MS = 1000;

/** What one ingest call did, for the ingest path's responses, queue messages and counters. */
export interface IngestResult {
  /** The person the events were applied to (an alias forwards to its person). */
  personKey: PersonKey;
  accepted: string[];
  duplicates: string[];
  /** Dropped because the person was erased (tombstone). */
  dropped: string[];
  /** Refused: their expired signature named a person this browser is not linked to (ProfileEventInput.claimedPerson). */
  unlinked?: string[];
  /** Dropped because no purpose was granted under the person's recorded consent. */
  consentDropped: string[];
  /**
   * Effective consent of each event whose request carried none (the person's record), and of
   * each whose claim a choice made after it narrowed (see claimAfterWithdrawals); any other
   * event that carried consent is judged by that, which the caller already has.
   */
  consents: Record<string, ConsentState>;
  /**
   * The person's choice in force after the events (its ConsentRecord.eventId): the consent
   * record the accepted events were judged by, but those named in `consentIds`, judged by the
   * choice in force before a later one in the run took over (Enrichment.consentId), or by
   * none (null: no choice was on record yet).
   */
  consentId?: string;
  consentIds: Record<string, string | null>;
  /** The profile after the events (without recent actions: nobody on the ingest path reads them). */
  profile: ProfileSummary;
  /** Events the profile produced (interest.shifted). */
  emitted: CustomerAction[];
  /** "Viewed next" product pairs (personalization granted), for co-visitation counts. */
  covisits: { from: string; to: string; at: string }[];
  /** Seconds to wait when the browser's rate limit applied nothing. */
  rateLimited?: number;
  /** Whether the profile changed (a new snapshot should go downstream). */
  changed: boolean;
  /**
   * Whether these events made the person forget what personalization had learned: a consent
   * event withdrawing it, or a sign-in that merged in a browser whose newer choice withdrew
   * it (the run then holds no consent event and may not grant personalization). The cleared
   * profile must go downstream whatever the run's consent, so Directus forgets it too.
   */
  personalizationCleared: boolean;
  /**
   * Consent events accepted as proof of a choice but not in force: made before the choice
   * the person's record holds (an offline queue delivering an older choice late). Downstream
   * they are history, never the person's current choice.
   */
  supersededConsents: string[];
  version: number;
}

/** Everything held about a person, for an access request. */
export interface ProfileExport {
  identity?: { siteId: string; personKey: PersonKey };
  profile?: ProfileState;
  aliasOf?: PersonKey;
  erasedAt?: string;
  /** Until the tombstone expires: whom the erasure took, so that a retried DELETE erases them again downstream. */
  erasedWith?: Omit<ErasureResult, 'erased'>;
  /**
   * A replay under way, or abandoned and not yet finished by the alarm (up to a day): what
   * its row holds until the replay ends (the consent record, merged browsers, promos
   * offered, who the person is, when first and last seen), and the person's data with it.
   */
  replaying?: Replaying;
  /**
   * A browser's profile as it handed it to its person, kept until the person confirms they
   * stored it (see handOver): a copy of what the person holds, or, if their write failed,
   * what they will take when they retry.
   */
  handedOver?: ProfileState;
  /** Queue messages about this person the queue refused, waiting here for the alarm to send them again (see park). */
  parked?: QueueMessage[];
  /**
   * A retention run that deleted the person but failed to forget all their merged browsers:
   * the browsers it still has to forget (each still names the person), until its alarm, back
   * within a minute, does. Before, an access request then found nothing held (404).
   */
  retiring?: Retiring;
  seenEventIds: number;
}

/** The kv row `parked`: when the alarm next sends the parked messages, and how many tries failed. */
interface ParkedState {
  due: number;
  tries: number;
}

/** What an anonymous profile hands over when it merges into a person. */
export interface HandOver {
  /** The profile as JSON (a recursive JSON type is too deep for RPC typings). */
  state?: string;
  seen: { id: string; at: number }[];
  /** The browser is someone else's already (an alias of another person, or erased): nothing was handed over. */
  refused?: true;
}

/** What erasure removed, for the downstream erasure message. */
export interface ErasureResult {
  personKey: PersonKey;
  anonymousIds: string[];
  userId?: string;
  erased: boolean;
}

type Identity = { siteId: string; personKey: PersonKey };
/** A retired person's merged browsers, still to be forgotten. */
export type Retiring = { siteId: string; browsers: PersonKey[] };
/** A replay under way: the version it numbers on from, and the browsers merged before it. */
export type Replaying = {
  /** When the replay began (epoch ms); rows of earlier versions have none and count as abandoned. */
  startedAt?: number;
  previous: number;
  browsers: string[];
  /** The person's consent record before the replay: the log cannot hold a withdrawal (nothing is logged without analytics). */
  consent?: ConsentRecord;
  /**
   * The promos offered before the replay, per rule: the cap's count, which the log cannot
   * rebuild (a replay skips the `promo.offered` events the edge made).
   */
  offers?: Record<string, number>;
  /** The promo offered before the replay, which the log does not rebuild either. */
  promo?: OfferedPromo<number>;
  /** Who the person is: a replay that finds none of their events keeps them (see continueVersion). */
  identity?: Identity;
  /** When they were first and last seen: such a kept person's retention runs on from there. */
  seen?: { first: string; last: string };
};

function consentFromEvent(event: CustomerAction): ConsentState | undefined {
  const props = event.properties;
  const categories = props?.categories;
  const policyVersion = props?.policyVersion;
  if (categories === null || typeof categories !== 'object' || Array.isArray(categories)) return undefined;
  if (typeof policyVersion !== 'string') return undefined;
  const out: Record<string, boolean> = {};
  for (const [key, value] of Object.entries(categories)) if (typeof value === 'boolean') out[key] = value;
  return { categories: out, policyVersion };
}

/**
 * The seen-id of the order an `order.completed` counts, beside its event id (a ULID, so
 * the two cannot meet). One order reaches a person under several event ids: the Directus
 * order Flow's, the five-minute catch-up's of a paid order (the Flow's id again), and a
 * backend's or the browser's own for the same order; one created pending and paid later is
 * sent by the paid-order Flow (the Flow's id again) while its backend sends it too. Each
 * counted it again: orders, revenue, segments, triggers and lift. Kept ORDER_SEEN_WINDOW_MS.
 */
function orderKey(event: CustomerAction): string | undefined {
  const orderId = event.properties?.orderId;
  if (typeof orderId !== 'string') return undefined;
  // A refund is claimed by its order (and its own refundId, when sent) the same way: a
  // backend's retry, or the same refund sent again under another event id, must not take the
  // order back twice, while each of several partial refunds of one order is taken once. JSON,
  // as both ids may hold any character.
  if (event.name === 'order.refunded') {
    const refundId = event.properties?.refundId;
    return `refund:${JSON.stringify(typeof refundId === 'string' ? [orderId, refundId] : [orderId])}`;
  }
  return event.name === 'order.completed' ? `order:${orderId}` : undefined;
}

/** When an input happened: its server-corrected time, else `fallback` (arrival). */
function eventTime(input: ProfileEventInput | undefined, fallback: number): number {
  const at = input === undefined ? Number.NaN : Date.parse(input.enrichment.correctedTimestamp);
  return Number.isFinite(at) ? at : fallback;
}

/** The earliest time among inputs (arrival time when none is known). */
function earliestEventTime(inputs: readonly ProfileEventInput[], fallback: number): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const input of inputs) earliest = Math.min(earliest, eventTime(input, fallback));
  return Number.isFinite(earliest) ? earliest : fallback;
}

/**
 * Puts back the consent record kept through a replay unless the profile holds a newer one
 * (a choice made during the replay); a record withdrawing personalization clears what the
 * replayed events taught.
 */
function keepConsent(state: ProfileState, kept: ConsentRecord | undefined): void {
  if (kept === undefined) return;
  if (state.consent !== undefined && chosenLater(state.consent, kept)) return;
  state.consent = kept;
  if (!isGranted(kept.state, 'personalization')) clearPersonalization(state);
}

/** Whether a replay has run so long that its CLI must have died (see REPLAY_ABANDONED_MS). */
function replayAbandoned(replaying: Replaying, now: number): boolean {
  return replaying.startedAt === undefined || replayDeadline(replaying, now) <= now;
}

/**
 * When a replay under way counts as abandoned. A row written before rows carried their
 * start (a replay running across that deploy) counts from `now`: an event arriving during it
 * must not bring the alarm forward to now and finish a replay whose CLI is still sending.
 * (The alarm itself takes such a row as abandoned: the code that wrote it set the alarm a
 * day after the start.)
 */
function replayDeadline(replaying: Replaying, now: number): number {
  return (replaying.startedAt ?? now) + REPLAY_ABANDONED_MS;
}

/** The later of two ISO times (the first when the second is unknown). */
function laterOf(a: string, b: string | undefined): string {
  return b !== undefined && b > a ? b : a;
}

/**
 * When a person is due for retention: last seen plus the period. During a replay the profile
 * holds only the events rebuilt so far: the person was last seen when the replay's row says.
 */
function retentionDue(state: ProfileState, replaying: Replaying | undefined, retentionMs: number): number {
  return Date.parse(laterOf(state.lastSeen, replaying?.seen?.last)) + retentionMs;
}

/** How many promos a rule has offered, by an `offers` map (own keys only: a rule id is data). */
function offersOf(offers: Record<string, number> | undefined, ruleId: string): number {
  return offers !== undefined && Object.hasOwn(offers, ruleId) ? (offers[ruleId] ?? 0) : 0;
}

/** Sets a rule's count of promos offered. */
function setOffers(offers: Record<string, number>, ruleId: string, count: number): void {
  // defineProperty keeps a rule id like `__proto__` as data instead of touching the prototype.
  Object.defineProperty(offers, ruleId, {
    value: count,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * Adds `from`'s offers to `into`'s, rule by rule: the offers counted before a replay and
 * those the rebuilt profile made since, so that no cap starts over.
 */
function addOffers(into: Record<string, number>, from: Record<string, number> | undefined): void {
  if (from === undefined) return;
  for (const [ruleId, count] of Object.entries(from)) setOffers(into, ruleId, offersOf(into, ruleId) + count);
}

/** An ingest outcome before any event is applied (its profile summary is added last). */
function nothingApplied(personKey: PersonKey, version: number): Omit<IngestResult, 'profile'> {
  return {
    personKey,
    accepted: [],
    duplicates: [],
    dropped: [],
    consentDropped: [],
    consents: {},
    consentIds: {},
    emitted: [],
    covisits: [],
    changed: false,
    personalizationCleared: false,
    supersededConsents: [],
    version,
  };
}

export class ProfileDO extends DurableObject<Env> {
  #sql: SqlStorage;
  #state: ProfileState | undefined;
  #loaded = false;
  #serial: Promise<unknown> = Promise.resolve();
  /**
   * The small kv rows (identity, alias, tombstone; not the profile, kept parsed in #state)
   * as last read or written: every ingest checks them and only this object writes them, so
   * they are read once, in one statement with the profile (undefined: not read yet).
   */
  #kv: Map<string, string> | undefined;
  #insertsSincePrune = 0;
  /** Browsers this person took over in the ingest under way: told once it is stored (confirmHandOver). */
  #takenOver: PersonKey[] = [];
  /** This browser's rate-limit bucket, in memory (forgetting it only errs towards allowing). */
  #bucket: { tokens: number; updatedAt: number } | undefined;
  /** Browsers that refused a hand-over (someone else's, or erased), so later events do not ask again. */
  #refusedBrowsers = new Set<string>();
  /** The alarm as last read or set (undefined: not read yet). */
  #alarmAt: number | null | undefined;
  /**
   * Whether this object's tables exist. They are created by the first write, not on
   * construction: reading a person nobody has seen (a decide for an unknown or made-up
   * anonymous id) must not leave an object with empty tables behind, which would never
   * be deleted (only events set the retention alarm).
   */
  #hasTables: boolean;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#hasTables =
      this.#sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'").toArray().length > 0;
  }

  /** Creates the tables before the first write (see #hasTables). */
  #writable(): SqlStorage {
    if (!this.#hasTables) {
      this.#sql.exec(`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS seen_at ON seen (at);`);
      this.#hasTables = true;
    }
    return this.#sql;
  }

  /** Runs `work` after every earlier call finished, so a person's events apply strictly in order. */
  #inOrder<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(work, work);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  /** Reads every kv row once (a handful), parsing the profile unless it is already loaded. */
  #readKv(): Map<string, string> {
    if (this.#kv === undefined) {
      const kv = new Map<string, string>();
      let profile: string | undefined;
      const rows = this.#hasTables ? this.#sql.exec<{ k: string; v: string }>('SELECT k, v FROM kv') : [];
      for (const row of rows) {
        if (row.k === 'profile') profile = row.v;
        else kv.set(row.k, row.v);
      }
      this.#kv = kv;
      if (!this.#loaded) {
        this.#state = profile !== undefined ? (JSON.parse(profile) as ProfileState) : undefined;
        this.#loaded = true;
      }
      // Nothing stored at all: a new object, which cannot have an alarm yet.
      if (kv.size === 0 && profile === undefined && this.#alarmAt === undefined) this.#alarmAt = null;
    }
    return this.#kv;
  }

  #get(key: string): string | undefined {
    return this.#readKv().get(key);
  }

  #put(key: string, value: string): void {
    this.#writable().exec('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)', key, value);
    if (key !== 'profile') this.#readKv().set(key, value);
  }

  #drop(key: string): void {
    this.#writable().exec('DELETE FROM kv WHERE k = ?', key);
    this.#readKv().delete(key);
  }

  #load(): ProfileState | undefined {
    if (!this.#loaded) {
      if (this.#kv === undefined) this.#readKv();
      else {
        const text = this.#hasTables
          ? this.#sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'profile'").toArray()[0]?.v
          : undefined;
        this.#state = text !== undefined ? (JSON.parse(text) as ProfileState) : undefined;
        this.#loaded = true;
      }
    }
    return this.#state;
  }

  #save(state: ProfileState): void {
    this.#state = state;
    this.#loaded = true;
    this.#put('profile', JSON.stringify(state));
  }

  /** A kv row this object wrote as JSON, parsed (undefined when there is none). */
  #getJson<T>(key: string): T | undefined {
    const text = this.#get(key);
    return text !== undefined ? (JSON.parse(text) as T) : undefined;
  }

  #identity(): Identity | undefined {
    return this.#getJson<Identity>('identity');
  }

  #alias(): PersonKey | undefined {
    return this.#get('alias') as PersonKey | undefined;
  }

  #tombstone(): string | undefined {
    return this.#get('tombstone');
  }

  /**
   * The merged browsers a retention run is still forgetting. Their events, forwarded here
   * meanwhile, start the person anew without taking the browser over again: that would
   * wait on the browser, which is waiting on this object.
   */
  #retiring(): Retiring | undefined {
    return this.#getJson<Retiring>('retiring');
  }

  /** What this key's erasure took, while its tombstone stands (see erase). */
  #erasure(): ErasureResult | undefined {
    return this.#getJson<ErasureResult>('erasure');
  }

  /** What a replay under way rebuilds on (see forgetForReplay). */
  #replaying(): Replaying | undefined {
    return this.#getJson<Replaying>('replaying');
  }

  async #rules(siteId: string): Promise<{ rules: ProfileRules; retentionMs: number }> {
    const site = await getSiteById(this.env, siteId);
    const settings: Record<string, unknown> = site?.settings ?? {};
    // A site's own setting, else the Worker's var; an unusable one is logged (configuredDays).
    const days = (key: string, varName: string, varValue: string | undefined, fallbackDays: number) => {
      const own = settings[key];
      return own === undefined || own === null
        ? configuredDays(varValue, varName, fallbackDays)
        : configuredDays(own, `site ${siteId} settings.${key}`, fallbackDays);
    };
    const halfLifeDays = days(
      'interestHalfLifeDays',
      'INTEREST_HALF_LIFE_DAYS',
      this.env.INTEREST_HALF_LIFE_DAYS,
      DEFAULT_RULES.halfLifeMs / DAY_MS,
    );
    const retentionDays = days(
      'profileRetentionDays',
      'PROFILE_RETENTION_DAYS',
      this.env.PROFILE_RETENTION_DAYS,
      DEFAULT_PROFILE_RETENTION_DAYS,
    );
    const custom = Array.isArray(settings.segments) ? settings.segments : [];
    const customSegments: ProfileRules['customSegments'] = [];
    for (const item of custom) {
      if (item === null || typeof item !== 'object') continue;
      const { id, minCounters } = item as { id?: unknown; minCounters?: unknown };
      if (typeof id !== 'string' || minCounters === null || typeof minCounters !== 'object') continue;
      const mins: Record<string, number> = {};
      for (const [k, v] of Object.entries(minCounters)) if (typeof v === 'number') mins[k] = v;
      customSegments.push({ id, minCounters: mins });
    }
    return {
      rules: { ...DEFAULT_RULES, halfLifeMs: halfLifeDays * DAY_MS, customSegments },
      retentionMs: retentionDays * DAY_MS,
    };
  }

  #emptyResult(personKey: PersonKey, siteId: string, now: number, state?: ProfileState): IngestResult {
    state ??= this.#load() ?? emptyProfile(siteId, personKey, new Date(now).toISOString());
    return { ...nothingApplied(personKey, state.version), profile: toSummary(state, now, DEFAULT_RULES) };
  }

  /**
   * Applies a person's accepted events in order, once each; see IngestResult. With
   * `limit`, first takes a token from this browser's bucket and applies nothing when empty.
   */
  ingest(
    siteId: string,
    personKey: PersonKey,
    inputs: ProfileEventInput[],
    limit?: { perSecond: number; burst: number },
  ): Promise<IngestResult> {
    if (limit) {
      const retryAfterSeconds = this.#take(limit.perSecond, limit.burst);
      if (retryAfterSeconds > 0) {
        const result = this.#emptyResult(personKey, siteId, Date.now());
        result.rateLimited = retryAfterSeconds;
        return Promise.resolve(result);
      }
    }
    return this.#inOrder(() => this.#ingest(siteId, personKey, inputs));
  }

  /** Takes a token from this browser's bucket; 0 when allowed, else seconds to wait. */
  #take(perSecond: number, burst: number): number {
    const now = Date.now();
    const tokens = this.#bucket
      ? Math.min(burst, this.#bucket.tokens + ((now - this.#bucket.updatedAt) / 1000) * perSecond)
      : burst;
    if (tokens < 1) {
      this.#bucket = { tokens, updatedAt: now };
      return Math.max(1, Math.ceil((1 - tokens) / perSecond));
    }
    this.#bucket = { tokens: tokens - 1, updatedAt: now };
    return 0;
  }

  async #ingest(siteId: string, personKey: PersonKey, inputs: ProfileEventInput[]): Promise<IngestResult> {
    const now = Date.now();
    if (this.#tombstone() !== undefined) {
      const result = this.#emptyResult(personKey, siteId, now);
      result.dropped = inputs.map((i) => i.event.id);
      return result;
    }
    const alias = this.#alias();
    // An event whose signature expired reaches the person it named only through a browser
    // linked to them: one linked to another account (a shared computer), or to no one, is
    // not theirs to keep it. But a choice of consent on a browser linked to no one is the
    // browser's own (a withdrawal made there must never be refused); on one linked to
    // another account it is not that account's choice.
    const reaching = alias ?? personKey;
    const unlinked = inputs.filter(
      (i) =>
        i.claimedPerson !== undefined &&
        i.claimedPerson !== reaching &&
        !(alias === undefined && personKey.startsWith('anon:') && i.event.type === 'consent'),
    );
    if (unlinked.length > 0) {
      const theirs = inputs.filter((i) => !unlinked.includes(i));
      const result =
        theirs.length > 0
          ? await this.#ingest(siteId, personKey, theirs)
          : this.#emptyResult(personKey, siteId, now);
      result.unlinked = [...(result.unlinked ?? []), ...unlinked.map((i) => i.event.id)];
      return result;
    }
    if (alias !== undefined) {
      return this.#stub(siteId, alias).ingest(siteId, alias, inputs);
    }
    const { rules, retentionMs } = await this.#rules(siteId);
    // A person's first write: if it fails, nothing of it may stay behind (see the catch below).
    // The object may exist already for messages parked about this person (see park).
    const firstWrite = this.#identity() === undefined;
    if (firstWrite) this.#put('identity', JSON.stringify({ siteId, personKey }));

    // The profile's clock is event time (server-corrected), not arrival time: a new
    // profile starts at its earliest event, so a replay of old events rebuilds the same
    // timestamps and decay as the live path did.
    let state = this.#load();
    if (state === undefined) {
      state = emptyProfile(siteId, personKey, new Date(earliestEventTime(inputs, now)).toISOString());
      // During a replay the person's life began before what has been rebuilt so far: a live
      // event ahead of the replayed ones keeps that first seen, so Directus does not take its
      // near-empty snapshot for a later life of the person (see newerSnapshot, sync/mapping.ts).
      const began = this.#replaying()?.seen?.first;
      if (began !== undefined && began < state.firstSeen) state.firstSeen = began;
    }
    const before = state.version;
    // The view is computed once, at the end (it copies up to 100 actions).
    const result = nothingApplied(personKey, state.version);

    // Dedupe: the batch's ids are recorded as seen up front, and the insert answers which
    // were new (one statement for up to 40 ids, instead of a lookup and then an insert).
    // An order is claimed by its order id too (orderKey).
    const claimed = this.#claim(
      inputs.flatMap((i) => {
        const order = orderKey(i.event);
        return order === undefined ? [i.event.id] : [i.event.id, order];
      }),
      now,
    );
    const unclaimed = new Set(claimed);
    this.#takenOver = [];
    try {
      // Events that came without consent (server producers) go by the person's recorded
      // choice, as the site's categories stand today: one the marketer has since disabled
      // grants nothing, as it grants nothing to a browser's claim.
      const config = inputs.some((i) => i.consent === undefined)
        ? await getConsentConfig(this.env, siteId, (p) => this.ctx.waitUntil(p))
        : undefined;
      // A choice made under an earlier policy version grants nothing (the SDK asks the person
      // again): a server event is judged now, under the policy in force.
      const recorded = (consent: ConsentState): ConsentState =>
        config === undefined
          ? consent
          : (consentInForce(consent, config) ?? { categories: {}, policyVersion: consent.policyVersion });
      state = await this.#applyInputs(
        siteId,
        personKey,
        inputs,
        unclaimed,
        state,
        rules,
        now,
        result,
        recorded,
      );
    } catch (err) {
      // Nothing was stored: forget the ids again, so a retry of these events is not a
      // "duplicate", and drop the in-memory state the failed events may have touched.
      this.#unclaim(claimed);
      this.#loaded = false;
      this.#state = undefined;
      // The browsers handed over keep their copy: the retry takes it again.
      this.#takenOver = [];
      // A new person's identity row and tables would otherwise stay, and no retention
      // alarm (set only once events are stored) would ever delete them.
      if (firstWrite) await this.#undoFirstWrite();
      throw err;
    }
    // During a replay the person's own record stands after every chunk, not only at its end:
    // a replay interrupted part-way must not leave a rebuilt grant in force.
    const replaying = this.#replaying();
    if (replaying !== undefined) keepConsent(state, replaying.consent);
    if (firstWrite && result.accepted.length === 0) {
      // Every event dropped for lack of consent (a server producer's, with no choice on
      // record): a person nobody may hold anything about must not be stored.
      await this.#undoFirstWrite();
      return { ...result, profile: toSummary(state, now, rules) };
    }
    this.#insertsSincePrune += claimed.length;
    this.#save(state);
    this.#pruneSeen(now, firstWrite);
    // Stored: the browsers taken over may drop their copies. After this turn, not within it
    // (a browser may be forwarding an event here from within its own turn).
    for (const browser of this.#takenOver.splice(0))
      this.ctx.waitUntil(
        this.#stub(siteId, browser)
          .confirmHandOver(personKey)
          .catch((err: unknown) =>
            console.warn(
              JSON.stringify({
                level: 'warn',
                msg: 'profile.hand_over_unconfirmed',
                siteId,
                error: err instanceof Error ? err.name : 'unknown',
              }),
            ),
          ),
      );
    // During a replay the alarm must also come when the replay counts as abandoned.
    await this.#scheduleRetention(
      Math.min(
        retentionDue(state, replaying, retentionMs),
        replaying !== undefined ? replayDeadline(replaying, now) : Number.POSITIVE_INFINITY,
      ),
    );
    result.changed = state.version !== before;
    result.version = state.version;
    // Most runs end under the choice they began with: one id for all their events.
    const inForce = state.consent?.eventId;
    if (inForce !== undefined) result.consentId = inForce;
    result.consentIds = Object.fromEntries(
      Object.entries(result.consentIds).filter(([, id]) => id !== (inForce ?? null)),
    );
    return { ...result, profile: toSummary(state, now, rules) };
  }

  /** Records ids as seen (one statement per 40: bound parameters are limited to 100) and returns those that were new. */
  #claim(ids: string[], now: number): string[] {
    const unique = [...new Set(ids)];
    const fresh: string[] = [];
    for (let i = 0; i < unique.length; i += 40) {
      const chunk = unique.slice(i, i + 40);
      const rows = chunk.map(() => '(?, ?)').join(',');
      for (const row of this.#writable().exec<{ id: string }>(
        `INSERT OR IGNORE INTO seen (id, at) VALUES ${rows} RETURNING id`,
        ...chunk.flatMap((id) => [id, now]),
      )) {
        fresh.push(row.id);
      }
    }
    return fresh;
  }

  /** Undoes #claim. */
  #unclaim(ids: string[]): void {
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      this.#sql.exec(`DELETE FROM seen WHERE id IN (${chunk.map(() => '?').join(',')})`, ...chunk);
    }
  }

  /**
   * Applies inputs in order to `state`; `fresh` holds the ids not seen before (each is
   * consumed by its first occurrence, so a repeat within the batch is a duplicate too).
   */
  async #applyInputs(
    siteId: string,
    personKey: PersonKey,
    inputs: ProfileEventInput[],
    fresh: Set<string>,
    initial: ProfileState,
    rules: ProfileRules,
    now: number,
    result: Omit<IngestResult, 'profile'>,
    recorded: (consent: ConsentState) => ConsentState,
  ): Promise<ProfileState> {
    const state = initial;
    for (const input of inputs) {
      const { event, enrichment } = input;
      // Both consumed: an order counted under another event id is a duplicate too.
      const freshEvent = fresh.delete(event.id);
      const order = orderKey(event);
      if (!freshEvent || (order !== undefined && !fresh.delete(order))) {
        result.duplicates.push(event.id);
        continue;
      }
      const eventAt = eventTime(input, now);

      // A choice made before the one in force (an offline queue flushing late) is accepted,
      // as proof of what the person chose then, but changes nothing: neither the record nor
      // the profile, which it must not teach under a grant the person has since replaced.
      let superseded = false;
      if (event.type === 'consent') {
        const chosen = input.consent ?? consentFromEvent(event);
        if (chosen) {
          const record: ConsentRecord = {
            state: chosen,
            recordedAt: enrichment.receivedAt,
            chosenAt: new Date(eventAt).toISOString(),
            eventId: event.id,
            source: consentSource(event),
          };
          const gpc = gpcOfChoice(input.gpc, record.source);
          if (gpc !== undefined) record.gpc = gpc;
          const inForce = consentAfter(record, state.consent);
          if (inForce !== state.consent) {
            state.consent = inForce;
            state.version++;
            const learned = state.recentActions.length > 0 || Object.keys(state.interests).length > 0;
            if (learned && !isGranted(inForce.state, 'personalization')) {
              clearPersonalization(state);
              result.personalizationCleared = true;
            }
          }
          // An older choice (withdrawing something or not) is not the one in force: it teaches nothing.
          if (inForce !== record) {
            superseded = true;
            result.supersededConsents.push(event.id);
          }
        }
      }

      // A browser event's own claim, less what a choice made after it has withdrawn (an
      // offline queue flushing late); the queue's sinks follow what is reported here. Not in
      // a replay: the stored events' purposes were narrowed as they came in, and the record
      // put back after each chunk would judge the chunks apart.
      const withdrawnSince =
        input.consent !== undefined && event.type !== 'consent' && this.#replaying() === undefined
          ? claimAfterWithdrawals(input.consent, state.consent, eventAt)
          : undefined;
      if (withdrawnSince) result.consents[event.id] = withdrawnSince;
      const claim = withdrawnSince ?? input.consent;
      const effective = claim ?? (state.consent ? recorded(state.consent.state) : defaultConsent());
      const personalization =
        claim === undefined
          ? isGranted(effective, 'personalization')
          : input.personalization && isGranted(claim, 'personalization');
      const anyPurpose =
        personalization || isGranted(effective, 'analytics') || isGranted(effective, 'marketing');
      // A browser's first verified event links it to the person whatever the purposes: the
      // link is who the browser is, not what is learned about them, and without it erasing the
      // person would leave that browser's events (stored under analytics alone) behind.
      const link = async () => {
        if (
          !personKey.startsWith('user:') ||
          event.anonymousId.startsWith('server:') ||
          state.anonymousIds.includes(event.anonymousId) ||
          this.#retiring()?.browsers.includes(`anon:${event.anonymousId}`)
        )
          return;
        // A browser merged before a replay is an alias of this person still: linked again
        // as it is (asking it to hand over would wait on a browser that may wait on us).
        if (this.#replaying()?.browsers.includes(event.anonymousId))
          state.anonymousIds.push(event.anonymousId);
        else if (
          await this.#mergeAnonymous(siteId, personKey, event.anonymousId, state, rules, personalization)
        )
          result.personalizationCleared = true;
      };
      if (!anyPurpose && event.type !== 'consent') {
        // Made under a grant the person withdrew since: not taken, but who the browser is
        // still counts (its events logged before are the person's to erase).
        if (withdrawnSince) await link();
        result.consentDropped.push(event.id);
        continue;
      }
      if (input.consent === undefined) result.consents[event.id] = effective;
      result.accepted.push(event.id);
      result.consentIds[event.id] = state.consent?.eventId ?? null;
      const seenAt = new Date(eventAt).toISOString();
      if (seenAt > state.lastSeen) state.lastSeen = seenAt;
      // An older event arriving late (an offline queue flushing) moves the start back too.
      if (seenAt < state.firstSeen) state.firstSeen = seenAt;
      await link();
      if (!personalization || superseded) continue;

      const outcome = applyEvent(state, event, eventAt, rules, !this.#refusedBrowsers.has(event.anonymousId));
      // Held for its order (heldRefunds), and claimed all the same: the profile takes it
      // once, when the order counts, so the same refund sent again (a retry, another event
      // id) is a duplicate now as it would be once applied. Site only: no order or person.
      if (outcome.refundHeld) log('info', 'profile.refund_held', { siteId });
      result.emitted.push(...outcome.emitted);
      if (outcome.covisit) result.covisits.push(outcome.covisit);
    }

    return state;
  }

  /**
   * On the first verified event from a browser, takes over that browser's anonymous profile
   * into `state`: all of it under personalization, else only who it is (ids, consent, seen
   * event ids), so nothing learned reaches a person who has not granted personalization.
   * Returns whether the browser's newer choice withdrew personalization, which forgets what
   * the person had learned (see mergeProfiles).
   */
  async #mergeAnonymous(
    siteId: string,
    personKey: PersonKey,
    anonymousId: string,
    state: ProfileState,
    rules: ProfileRules,
    personalization: boolean,
  ): Promise<boolean> {
    if (this.#refusedBrowsers.has(anonymousId)) return false;
    if (state.anonymousIds.length >= MAX_BROWSERS) {
      // At the bound the browser is not linked (see MAX_BROWSERS): the person's list must
      // never drop a browser that stays their alias, or erasing them would leave it behind.
      this.#refuseBrowser(anonymousId);
      return false;
    }
    const handed = await this.#stub(siteId, `anon:${anonymousId}`).handOver(
      personKey,
      siteId,
      `anon:${anonymousId}`,
    );
    if (handed.refused) {
      // The event stays this person's; the browser is not linked (and not asked again).
      // Logged once per browser and object (site only: the ids would name two people), so an
      // operator sees sign-ins naming others' browsers: a shared computer, or an attempt to
      // take over someone's browser with one's own signed id.
      log('warn', 'identity.browser_not_linked', { siteId, reason: 'linked_to_another_person_or_erased' });
      this.#refuseBrowser(anonymousId);
      return false;
    }
    let withdrawn = false;
    if (handed.state !== undefined) {
      const theirs = JSON.parse(handed.state) as ProfileState;
      if (!personalization) clearPersonalization(theirs);
      withdrawn = mergeProfiles(state, theirs, rules);
    }
    // Below the bound (checked above): the browser now forwards its events here, so it is linked.
    linkBrowserTo(state, anonymousId);
    this.#takenOver.push(`anon:${anonymousId}`);
    for (const row of handed.seen) {
      this.#writable().exec('INSERT OR IGNORE INTO seen (id, at) VALUES (?, ?)', row.id, row.at);
    }
    state.version++;
    return withdrawn;
  }

  #refuseBrowser(anonymousId: string): void {
    if (this.#refusedBrowsers.size >= 1000) this.#refusedBrowsers.clear();
    this.#refusedBrowsers.add(anonymousId);
  }

  #stub(siteId: string, personKey: PersonKey) {
    return this.env.PROFILE.get(this.env.PROFILE.idFromName(`${siteId}/${personKey}`));
  }

  /**
   * Bounds the dedupe table to the window: every 500 ids this object instance took, and at
   * least once a day. The count alone lives in memory and starts again whenever the object
   * is evicted (a minute idle), so for nearly everyone (fewer than 500 events a visit) it
   * never came, and the table kept every id the person ever sent. A new person has nothing
   * to prune: their first write starts the day.
   */
  #pruneSeen(now: number, firstWrite: boolean): void {
    const pruned = Number(this.#get('seen_pruned'));
    if (firstWrite) {
      this.#put('seen_pruned', String(now));
      return;
    }
    if (this.#insertsSincePrune < 500 && now - pruned < SEEN_PRUNE_EVERY_MS) return;
    this.#insertsSincePrune = 0;
    this.#put('seen_pruned', String(now));
    this.#sql.exec(
      `DELETE FROM seen WHERE at < ? AND (NOT ${ORDER_SEEN_IDS} OR at < ?)`,
      now - SEEN_WINDOW_MS,
      now - ORDER_SEEN_WINDOW_MS,
    );
    this.#sql.exec(
      'DELETE FROM seen WHERE id NOT IN (SELECT id FROM seen ORDER BY at DESC, id DESC LIMIT ?)',
      SEEN_MAX,
    );
  }

  async #scheduleRetention(retainUntil: number): Promise<void> {
    // A retention that has not finished forgetting the merged browsers comes back within a
    // minute (#retire): a new event must not push that to the new retention date.
    const at = Math.min(
      retainUntil,
      Date.now() + (this.#retiring() ? RETIRING_RETRY_MS : RETENTION_RECHECK_MS),
      this.#parked()?.due ?? Number.POSITIVE_INFINITY,
    );
    if (this.#alarmAt === undefined) this.#alarmAt = (await this.ctx.storage.getAlarm()) ?? null;
    const current = this.#alarmAt;
    // Moving the alarm on every event would be a write per event; an hour of slack is fine for a retention period.
    if (current === null || Math.abs(current - at) > 60 * 60 * 1000) {
      await this.#setAlarm(at);
    }
  }

  /** Sets the alarm and remembers when, so that #scheduleRetention need not read it back. */
  async #setAlarm(at: number): Promise<void> {
    await this.ctx.storage.setAlarm(at);
    this.#alarmAt = at;
  }

  /** The person's profile as decide/triggers see it, or null when nothing is held. */
  async view(): Promise<ProfileView | null> {
    return this.#inOrder(async () => {
      if (this.#tombstone() !== undefined) return null;
      const alias = this.#alias();
      const identity = this.#identity();
      if (alias !== undefined && identity) return this.#stub(identity.siteId, alias).view();
      const state = this.#load();
      if (!state) return null;
      const { rules } = await this.#rules(state.siteId);
      return toView(state, Date.now(), rules);
    });
  }

  /** The person this anonymous profile was merged into, or null. */
  async aliasOf(): Promise<PersonKey | null> {
    return this.#alias() ?? null;
  }

  /** Counts an offer by a trigger rule unless `cap` is reached; false when capped. */
  async recordOffer(ruleId: string, cap: number, promo?: OfferedPromo<number>): Promise<boolean> {
    return this.#inOrder(async () => {
      const alias = this.#alias();
      const identity = this.#identity();
      if (alias !== undefined && identity)
        return this.#stub(identity.siteId, alias).recordOffer(ruleId, cap, promo);
      const state = this.#load();
      if (!state || this.#tombstone() !== undefined) return false;
      const own = offersOf(state.offers, ruleId);
      // During a replay the offers made before it count too (continueVersion adds them back).
      if (own + offersOf(this.#replaying()?.offers, ruleId) >= cap) return false;
      setOffers(state.offers, ruleId, own + 1);
      // The newest offer is the one decide shows (a promo slot holds one code).
      if (promo !== undefined) state.promo = { ...promo };
      state.version++;
      this.#save(state);
      return true;
    });
  }

  /**
   * Hands this anonymous profile to a person and becomes an alias of it (verified identify).
   * The profile and seen ids stay here, as the `handing` row and the seen table, until the
   * person has stored them (confirmHandOver): a person whose write fails after the hand-over
   * (an eviction, a failed statement) takes them again when the event is retried, instead of
   * finding an alias with nothing left (before, the browser's history was lost for good).
   */
  async handOver(to: PersonKey, siteId: string, self: PersonKey): Promise<HandOver> {
    // A repeat for the person this browser was handed to: answered at once, outside this
    // object's turn, which may be forwarding an event to that person, who waits on this answer
    // within theirs (the retry of a failed sign-in, or this browser's next anonymous event).
    if (this.#tombstone() === undefined && this.#alias() === to) return this.#handedCopy();
    return this.#inOrder(async () => {
      // A browser linked to another person stays theirs, and an erased one stays erased: a
      // signed-in user naming someone else's anonymous id (it travels in cookies and decide
      // URLs) must not take over that person's browser, its history or its later events.
      const alias = this.#alias();
      if ((alias !== undefined && alias !== to) || this.#tombstone() !== undefined)
        return { seen: [], refused: true };
      // An alias must know its site to forward reads (the browser may never have sent anonymously).
      if (this.#identity() === undefined) this.#put('identity', JSON.stringify({ siteId, personKey: self }));
      // Handed over already (a repeat queued behind this object's turn).
      if (alias === to) return this.#handedCopy();
      const state = this.#load();
      const now = Date.now();
      if (state) {
        this.#put('handing', JSON.stringify(state));
        this.#put('handed_at', String(now));
        // Should the person's confirmation never come, the alarm asks them (settleHandOver);
        // an earlier alarm (a resend of parked messages) stays, and asks too.
        await this.#alarmBy(now + HANDING_CHECK_MS);
      }
      this.#drop('profile');
      this.#state = undefined;
      this.#loaded = true;
      this.#put('alias', to);
      return this.#handedCopy();
    });
  }

  /** What this browser handed over, as its person takes it (again, after a failed write). */
  #handedCopy(): HandOver {
    const state = this.#get('handing');
    const seen = this.#hasTables
      ? this.#sql
          .exec<{ id: string; at: number }>(
            // Ids past the window are no use to the person either (they would only grow their table).
            `SELECT id, at FROM seen WHERE at >= ? OR (${ORDER_SEEN_IDS} AND at >= ?) ORDER BY at DESC LIMIT ?`,
            Date.now() - SEEN_WINDOW_MS,
            Date.now() - ORDER_SEEN_WINDOW_MS,
            SEEN_MAX,
          )
          .toArray()
      : [];
    return state !== undefined ? { state, seen } : { seen };
  }

  /** The person stored what this browser handed over: the copy kept for a retry goes. */
  async confirmHandOver(to: PersonKey): Promise<void> {
    await this.#inOrder(async () => {
      if (this.#alias() === to) this.#dropHandedCopy();
    });
  }

  #dropHandedCopy(): void {
    if (!this.#hasTables) return;
    this.#drop('handing');
    this.#drop('handed_at');
    this.#sql.exec('DELETE FROM seen');
  }

  /**
   * Whether this person holds `anonymousId` (a browser asking after its hand-over, see
   * settleHandOver): listed among their browsers (or being re-linked by a replay, or forgotten
   * by a retention run), erased, or neither.
   */
  async holdsBrowser(anonymousId: string): Promise<'listed' | 'erased' | 'absent'> {
    return this.#inOrder(async () => {
      if (this.#tombstone() !== undefined) return 'erased';
      const listed =
        this.#load()?.anonymousIds.includes(anonymousId) === true ||
        this.#replaying()?.browsers.includes(anonymousId) === true ||
        this.#retiring()?.browsers.includes(`anon:${anonymousId}`) === true;
      return listed ? 'listed' : 'absent';
    });
  }

  /**
   * The alarm of a browser still holding the copy of what it handed over: the person's
   * confirmation was lost, or their write failed and no retry came. Asked (outside this
   * object's turn: the person may be waiting on this browser), the person says whether they
   * hold it: if so, the copy goes; if they were erased, so is this browser, here and
   * downstream (its events before the sign-in were theirs); if not yet, the copy is kept
   * for a retry, for a week at most, and then the hand-over is undone: the browser is
   * anonymous again, with its own profile, and its next signed event hands it over anew.
   * Before, such a copy lived on with nobody to delete it (past the person's erasure and
   * retention), and a lost confirmation kept what a withdrawal had cleared.
   */
  async #settleHandOver(siteId: string, to: PersonKey, self: PersonKey): Promise<void> {
    const held = await this.#stub(siteId, to).holdsBrowser(self.slice('anon:'.length));
    await this.#inOrder(async () => {
      const handing = this.#get('handing');
      // Confirmed, erased or undone meanwhile.
      if (this.#alias() !== to || handing === undefined || this.#tombstone() !== undefined) return;
      const now = Date.now();
      if (held === 'listed') return this.#dropHandedCopy();
      if (held === 'erased') {
        const message: ErasureMessage = {
          kind: 'erasure',
          siteId,
          personId: self,
          anonymousIds: [self.slice('anon:'.length)],
          requestedAt: new Date(now).toISOString(),
          erasureId: newUlid(now),
          reason: 'request',
        };
        // Downstream first, as retention does: if the send fails the alarm is retried.
        await sendMessages(this.env.EVENTS, [message]);
        return this.#wipe(true, { personKey: self, anonymousIds: [], erased: true });
      }
      if (now - Number(this.#get('handed_at') ?? now) < HANDING_KEEP_MS) {
        await this.#setAlarm(now + HANDING_RECHECK_MS);
        return;
      }
      const state = JSON.parse(handing) as ProfileState;
      this.#drop('alias');
      this.#drop('handing');
      this.#drop('handed_at');
      this.#save(state);
      const { retentionMs } = await this.#rules(siteId);
      this.#alarmAt = undefined;
      await this.#scheduleRetention(retentionDue(state, undefined, retentionMs));
    });
  }

  /** Everything held about this person (access request), as JSON (see ProfileExport). */
  async export(): Promise<string> {
    return this.#inOrder(async () => {
      const out: ProfileExport = {
        seenEventIds: this.#hasTables
          ? this.#sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM seen').one().n
          : 0,
      };
      const identity = this.#identity();
      const state = this.#load();
      const alias = this.#alias();
      const tombstone = this.#tombstone();
      if (identity) out.identity = identity;
      if (state) out.profile = state;
      if (alias !== undefined) out.aliasOf = alias;
      const handing = this.#get('handing');
      if (handing !== undefined) out.handedOver = JSON.parse(handing) as ProfileState;
      if (tombstone !== undefined) out.erasedAt = tombstone;
      const parked = this.#parkedMessages();
      if (parked.length > 0) out.parked = parked.map((row) => row.message);
      const erasure = this.#erasure();
      if (erasure !== undefined) {
        const { erased: _, ...kept } = erasure;
        out.erasedWith = kept;
      }
      // During a replay (or after one abandoned, until the alarm finishes it) the row holds
      // the person's consent record, merged browsers and more, and the identity row is gone.
      const retiring = this.#retiring();
      if (retiring !== undefined) out.retiring = retiring;
      const replaying = this.#replaying();
      if (replaying !== undefined) {
        out.replaying = replaying;
        if (out.identity === undefined && replaying.identity !== undefined) out.identity = replaying.identity;
      }
      return JSON.stringify(out);
    });
  }

  /**
   * Erases this person: deletes everything, keeps a tombstone so late events are dropped,
   * and erases the anonymous profiles merged into it. An alias erases its person.
   */
  async erase(siteId: string, personKey: PersonKey): Promise<ErasureResult> {
    const outcome = await this.#inOrder(async (): Promise<{ alias: PersonKey } | ErasureResult> => {
      // Read in turn: a hand-over queued before this erasure makes this browser an alias
      // (its data now the person's) by the time the erasure runs.
      const alias = this.#alias();
      if (alias !== undefined) return { alias };
      const state = this.#load();
      // What an earlier erasure of this key took (kept with its tombstone): a DELETE retried
      // because a merged browser could not be tombstoned, or the erasure message could not be
      // queued, must tombstone the same browsers and name the same person downstream.
      const earlier = this.#erasure();
      // The `erasing` row an earlier version kept for the same purpose (browsers still to
      // tombstone), on objects it left part-way through an erasure.
      const pending: unknown = JSON.parse(this.#get('erasing') ?? '[]');
      const unfinished = Array.isArray(pending) ? pending.filter((id) => typeof id === 'string') : [];
      // A replay under way (or abandoned) holds the browsers merged before it in its row
      // until it links them again: they are this person's aliases still.
      const replaying = this.#replaying();
      // A retention run that deleted the person but has not forgotten all their browsers yet
      // (it failed part-way; its alarm comes back) holds them in its row: they are this
      // person's still, and the wipe below deletes that row (nobody would forget them then).
      const retiring = (this.#retiring()?.browsers ?? []).map((key) => key.slice('anon:'.length));
      const anonymousIds = [
        ...new Set([
          ...(state?.anonymousIds ?? []),
          ...(replaying?.browsers ?? []),
          ...retiring,
          ...unfinished,
          ...(earlier?.anonymousIds ?? []),
        ]),
      ];
      const erased: ErasureResult = {
        personKey: earlier?.personKey ?? personKey,
        anonymousIds,
        erased: state !== undefined || replaying !== undefined || earlier?.erased === true,
      };
      const replayedUserId = replaying?.identity ? userIdOf(replaying.identity.personKey) : undefined;
      const userId = state?.userId ?? replayedUserId ?? earlier?.userId;
      if (userId !== undefined) erased.userId = userId;
      await this.#wipe(true, erased);
      return erased;
    });
    if ('alias' in outcome) {
      // Outside this object's turn: the person may be waiting on this object (a hand-over).
      const result = await this.#stub(siteId, outcome.alias).erase(siteId, outcome.alias);
      // The browser remembers whom it was erased with: a retried DELETE of this browser
      // finds no alias any more, and would otherwise erase downstream only the browser.
      await this.#inOrder(() => this.#wipe(true, result));
      return result;
    }
    const result = outcome;
    // Outside this object's turn: a merged browser forwards its events here from within its
    // own turn, so waiting for that browser from within ours would deadlock both. Our
    // tombstone already stands, so what it forwards meanwhile is dropped.
    for (const anonymousId of result.anonymousIds) {
      const key: PersonKey = `anon:${anonymousId}`;
      if (key !== personKey) await this.#stub(siteId, key).tombstone(result);
    }
    return result;
  }

  /**
   * Keeps queue messages about this person that the queue refused (see ingest/outbox.ts),
   * for the alarm to send again (#sendParked). An erased person's are dropped: their
   * tombstone stands, and nothing about them may reach Directus. Returns how many were kept.
   */
  async park(messages: QueueMessage[]): Promise<number> {
    return this.#inOrder(async () => {
      if (this.#tombstone() !== undefined || messages.length === 0) return 0;
      const now = Date.now();
      await this.#keepParked(
        messages.map((message) => ({ message, parkedAt: now })),
        this.#parked() ?? { due: now + PARKED_RETRY_MS, tries: 0 },
      );
      return messages.length;
    });
  }

  /** Stores parked messages after those already kept, and brings the alarm forward to `parked.due`. */
  async #keepParked(rows: { message: QueueMessage; parkedAt: number }[], parked: ParkedState): Promise<void> {
    const sql = this.#writable();
    sql.exec(
      'CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, parked_at INTEGER NOT NULL)',
    );
    for (const row of rows) {
      sql.exec(
        'INSERT INTO outbox (body, parked_at) VALUES (?, ?)',
        JSON.stringify(row.message),
        row.parkedAt,
      );
    }
    this.#put('parked', JSON.stringify(parked));
    await this.#alarmBy(parked.due);
  }

  /** Brings the alarm forward to `at` unless it already comes by then. */
  async #alarmBy(at: number): Promise<void> {
    if (this.#alarmAt === undefined) this.#alarmAt = (await this.ctx.storage.getAlarm()) ?? null;
    if (this.#alarmAt === null || this.#alarmAt > at) await this.#setAlarm(at);
  }

  #parked(): ParkedState | undefined {
    const row = this.#get('parked');
    return row === undefined ? undefined : (JSON.parse(row) as ParkedState);
  }

  /** The parked messages, oldest first, `limit` at most (none when no table was made). */
  #parkedMessages(limit = -1): { seq: number; parkedAt: number; message: QueueMessage }[] {
    if (this.#parked() === undefined) return [];
    return this.#sql
      .exec<{ seq: number; body: string; parked_at: number }>(
        'SELECT seq, body, parked_at FROM outbox ORDER BY seq LIMIT ?',
        limit,
      )
      .toArray()
      .map((row) => ({
        seq: row.seq,
        parkedAt: row.parked_at,
        message: JSON.parse(row.body) as QueueMessage,
      }));
  }

  /**
   * The alarm's resend of parked messages, in this object's turn (an erasure waits for it,
   * so nothing is sent after the wipe). What the queue takes is deleted; what it refuses
   * again waits twice as long, and is given up after PARKED_KEEP_MS.
   */
  async #sendParked(): Promise<void> {
    this.#kv = undefined;
    const parked = this.#parked();
    // Whatever woke the alarm, the parked messages are tried: early is no harm.
    if (parked === undefined) return;
    const now = Date.now();
    let rows = this.#parkedMessages(PARKED_PER_ALARM);
    // A browser merged into a person since its snapshot was parked: the person's snapshot
    // supersedes it, and the sync deletes the browser's own row when it takes the person's,
    // so this older one, sent after it, would bring that row back.
    if (this.#alias() !== undefined) {
      for (const row of rows)
        if (row.message.kind === 'profile') this.#sql.exec('DELETE FROM outbox WHERE seq = ?', row.seq);
      rows = rows.filter((row) => row.message.kind !== 'profile');
    }
    let unsent = new Set<QueueMessage>();
    try {
      await sendMessages(
        this.env.EVENTS,
        rows.map((row) => row.message),
      );
    } catch (err) {
      unsent = new Set(err instanceof QueueSendError ? err.unsent : rows.map((row) => row.message));
    }
    // The next try counts from the end of this one, which may have taken the whole send budget.
    const tried = Date.now();
    const expired = rows.filter((row) => unsent.has(row.message) && row.parkedAt + PARKED_KEEP_MS <= now);
    const gone = new Set(expired);
    for (const row of rows) {
      if (!unsent.has(row.message) || gone.has(row))
        this.#sql.exec('DELETE FROM outbox WHERE seq = ?', row.seq);
    }
    const siteId = this.#identity()?.siteId ?? rows[0]?.message.siteId ?? 'unknown';
    if (expired.length > 0) {
      count('queue_failed', expired.length);
      log('error', 'queue.parked_given_up', { siteId, messages: expired.length });
    }
    const left = unsent.size - expired.length;
    const sent = rows.length - unsent.size;
    if (left === 0 && this.#parkedMessages(1).length === 0) {
      this.#sql.exec('DROP TABLE IF EXISTS outbox');
      this.#drop('parked');
      log('info', 'queue.parked_sent', { siteId, messages: sent });
    } else if (left === 0 || sent > 0) {
      // The queue takes them: the rest go at the next alarm, a moment from now. Also when it
      // took some and not all: a slow queue spends the send budget (QUEUE_SEND_BUDGET_MS)
      // on a large backlog before its end, and is no reason to wait longer and longer.
      this.#put('parked', JSON.stringify({ due: tried + PARKED_NEXT_MS, tries: 0 } satisfies ParkedState));
      log('info', 'queue.parked_sent', { siteId, messages: sent, more: true });
    } else {
      const next: ParkedState = {
        due: tried + Math.min(PARKED_RETRY_MS * 2 ** (parked.tries + 1), PARKED_RETRY_MAX_MS),
        tries: parked.tries + 1,
      };
      this.#put('parked', JSON.stringify(next));
      log('warn', 'queue.parked_refused', { siteId, messages: left, tries: next.tries });
    }
    if (expired.length > 0) await flushStats(this.env);
  }

  /** When this person was erased, while the tombstone lasts (31 days); null when they were not. */
  async erasedAt(): Promise<string | null> {
    return this.#inOrder(async () => this.#tombstone() ?? null);
  }

  /** Turns an aliased anonymous profile into a tombstone (its person was erased, as `erasure` says). */
  async tombstone(erasure?: ErasureResult): Promise<void> {
    await this.#inOrder(() => this.#wipe(true, erasure));
  }

  /**
   * Deletes everything; with `leaveTombstone`, keeps the tombstone (and `erasure`, what the
   * erasure took, for a retried DELETE) until it expires.
   */
  async #wipe(leaveTombstone: boolean, erasure?: ErasureResult): Promise<void> {
    this.#alarmAt = undefined;
    await this.ctx.storage.deleteAlarm();
    if (this.#hasTables) {
      this.#sql.exec('DELETE FROM seen');
      this.#sql.exec('DELETE FROM kv');
      // Parked messages are about this person: none may reach Directus after the erasure.
      this.#sql.exec('DROP TABLE IF EXISTS outbox');
    }
    this.#kv = new Map();
    this.#state = undefined;
    this.#loaded = true;
    if (leaveTombstone) {
      const now = Date.now();
      this.#put('tombstone', new Date(now).toISOString());
      if (erasure !== undefined) this.#put('erasure', JSON.stringify(erasure));
      await this.ctx.storage.setAlarm(now + TOMBSTONE_TTL_MS);
    } else {
      await this.#deleteEverything();
    }
  }

  /**
   * Takes back a person's first write: deletes everything, except messages parked about
   * them before it (see park), which stay for the alarm to send.
   */
  async #undoFirstWrite(): Promise<void> {
    if (this.#parked() === undefined) return this.#deleteEverything();
    this.#sql.exec('DELETE FROM seen');
    this.#sql.exec("DELETE FROM kv WHERE k <> 'parked'");
    this.#kv = undefined;
    this.#state = undefined;
    this.#loaded = true;
  }

  /** Deletes all storage, tables included: a returning visitor's first write recreates them. */
  async #deleteEverything(): Promise<void> {
    this.#hasTables = false;
    this.#kv = new Map();
    this.#state = undefined;
    this.#loaded = true;
    await this.ctx.storage.deleteAll();
  }

  /**
   * Sends the parked messages again, then does what else the alarm is for; while messages
   * stay parked, the alarm comes back for them whatever that work set it to.
   */
  override async alarm(): Promise<void> {
    await this.#inOrder(() => this.#sendParked());
    try {
      await this.#alarmWork();
    } finally {
      await this.#inOrder(async () => {
        // The alarm's work sets the alarm itself: both are read from storage again.
        this.#kv = undefined;
        this.#alarmAt = undefined;
        const parked = this.#parked();
        if (parked !== undefined) await this.#alarmBy(parked.due);
      });
    }
  }

  /** Retention: deletes a person inactive past the period; expires tombstones. */
  async #alarmWork(): Promise<void> {
    const handing = await this.#inOrder(async () => {
      // Alarms are rare: read the kv rows from storage, not from the in-memory copy.
      this.#kv = undefined;
      const to = this.#alias();
      const identity = this.#identity();
      return to !== undefined && identity !== undefined && this.#get('handing') !== undefined
        ? { to, identity }
        : undefined;
    });
    if (handing !== undefined)
      return this.#settleHandOver(handing.identity.siteId, handing.to, handing.identity.personKey);
    const retiring = await this.#inOrder(() => this.#retire());
    if (retiring === undefined) return;
    // Outside this object's turn, as in erase(): a merged browser forwards its events here
    // from within its own turn, so waiting for it from within ours would deadlock both.
    for (const key of retiring.browsers) await this.#stub(retiring.siteId, key).forget();
    await this.#inOrder(async () => {
      this.#drop('retiring');
      // Unless one of those browsers sent an event meanwhile, which starts the person anew.
      if (this.#readKv().size === 0 && this.#load() === undefined) await this.#wipe(false);
    });
  }

  /**
   * The alarm's work within this object's turn. Returns the merged browsers still to be
   * forgotten once the person is deleted (kept in a row until they are, so that a retried
   * alarm finishes the job).
   */
  async #retire(): Promise<Retiring | undefined> {
    const now = Date.now();
    // Alarms are rare: read the kv rows from storage, not from the in-memory copy.
    this.#kv = undefined;
    const tombstone = this.#tombstone();
    if (tombstone !== undefined) {
      if (Date.parse(tombstone) + TOMBSTONE_TTL_MS <= now) await this.#wipe(false);
      else await this.ctx.storage.setAlarm(Date.parse(tombstone) + TOMBSTONE_TTL_MS);
      return undefined;
    }
    const retiring = this.#retiring();
    // Alarms are rare: read the durable state rather than trust the in-memory copy.
    this.#loaded = false;
    this.#alarmAt = undefined;
    let replaying = this.#replaying();
    if (replaying !== undefined && replayAbandoned(replaying, now)) {
      // The replay never finished (its CLI died): what its row kept (the consent record,
      // the proof of the person's choice; merged browsers; promos offered) goes back into
      // the person, who is then judged by retention like anyone else. Deleting the row
      // with the rest deleted that proof of a person who was never due.
      await this.#finishAbandonedReplay(replaying);
      replaying = undefined;
      // Finishing may have set the alarm (#keptOnly): the in-memory copy is read again.
      this.#alarmAt = undefined;
    }
    const state = this.#load();
    const identity = this.#identity();
    if (!state || !identity) {
      // A retry of an alarm that failed while forgetting the browsers.
      if (retiring) return retiring;
      // A replay under way that has rebuilt nothing yet: come back when it counts as abandoned.
      if (replaying !== undefined) {
        await this.ctx.storage.setAlarm(replayDeadline(replaying, now));
        return undefined;
      }
      // An object with only parked messages (a decision served to an unknown visitor) keeps
      // them until they are sent; the alarm after that deletes it.
      if (this.#alias() === undefined && this.#parked() === undefined) await this.#wipe(false);
      return undefined;
    }
    const { retentionMs } = await this.#rules(state.siteId);
    // During a replay the person's merged browsers are the row's too (see below).
    const due = retentionDue(state, replaying, retentionMs);
    if (due > now) {
      // Browsers still to forget: should that fail again, come back within a minute.
      await this.ctx.storage.setAlarm(
        Math.min(
          due,
          now + (retiring ? RETIRING_RETRY_MS : RETENTION_RECHECK_MS),
          replaying !== undefined ? replayDeadline(replaying, now) : Number.POSITIVE_INFINITY,
        ),
      );
      return retiring;
    }
    const anonymousIds = [...new Set([...state.anonymousIds, ...(replaying?.browsers ?? [])])];
    const message: ErasureMessage = {
      kind: 'erasure',
      siteId: state.siteId,
      personId: state.personKey,
      anonymousIds,
      requestedAt: new Date(now).toISOString(),
      erasureId: newUlid(now),
      reason: 'retention',
    };
    if (state.userId !== undefined) message.userId = state.userId;
    // Downstream first: if the send fails, the alarm is retried with the person still here;
    // after the wipe nothing would be left to say whom Directus must forget. Bounded
    // (sendMessages): a send that never settles would hold this person's turn, and every
    // batch of theirs, until the runtime ends the alarm.
    await sendMessages(this.env.EVENTS, [message]);
    await this.#wipe(false);
    console.log(JSON.stringify({ level: 'info', msg: 'profile.retention_deleted', siteId: state.siteId }));
    const browsers = anonymousIds
      .map((id): PersonKey => `anon:${id}`)
      .filter((key) => key !== state.personKey);
    if (browsers.length === 0) return undefined;
    const next: Retiring = { siteId: state.siteId, browsers };
    this.#put('retiring', JSON.stringify(next));
    // Were this object evicted before the browsers are forgotten, the alarm finishes the job.
    await this.ctx.storage.setAlarm(now + RETIRING_RETRY_MS);
    return next;
  }

  /**
   * Deletes everything without a tombstone (retention of the person it was merged into).
   * An erased person's tombstone stays until it expires: without it, their late events, or
   * a replay of what the event log still holds, would bring them back.
   */
  async forget(): Promise<void> {
    await this.#inOrder(async () => {
      if (this.#tombstone() === undefined) await this.#wipe(false);
    });
  }

  /**
   * Before a replay: deletes everything as forget() does, but keeps (in a row, until
   * continueVersion) the version the profile had, the browsers merged into it, the consent
   * record and the promos offered. Those browsers are aliases of this person still and
   * forward their events here; the rebuild links them again without a hand-over. A replay
   * that failed part-way left the row: its figures stand. Returns the version to number on
   * from (0: none).
   */
  async forgetForReplay(): Promise<number> {
    return this.#inOrder(async () => {
      if (this.#tombstone() !== undefined) return 0;
      const earlier = this.#replaying();
      const state = this.#load();
      const replaying: Replaying = {
        startedAt: Date.now(),
        previous: Math.max(earlier?.previous ?? 0, state?.version ?? 0),
        browsers: [...new Set([...(earlier?.browsers ?? []), ...(state?.anonymousIds ?? [])])],
      };
      // The newer of the record now and the one an interrupted replay kept (its chunks may
      // have rebuilt an older record since).
      const consent =
        earlier?.consent !== undefined && chosenLater(earlier.consent, state?.consent)
          ? earlier.consent
          : state?.consent;
      if (consent !== undefined) replaying.consent = consent;
      // The partly rebuilt profile of an interrupted replay counts only the offers made since.
      const offers: Record<string, number> = {};
      addOffers(offers, earlier?.offers);
      addOffers(offers, state?.offers);
      if (Object.keys(offers).length > 0) replaying.offers = offers;
      const promo = laterPromo(earlier?.promo, state?.promo);
      if (promo !== undefined) replaying.promo = promo;
      const identity = this.#identity() ?? earlier?.identity;
      if (identity !== undefined) replaying.identity = identity;
      const first = [earlier?.seen?.first, state?.firstSeen].filter((t) => t !== undefined).sort()[0];
      const last = [earlier?.seen?.last, state?.lastSeen]
        .filter((t) => t !== undefined)
        .sort()
        .at(-1);
      if (first !== undefined && last !== undefined) replaying.seen = { first, last };
      // Messages the queue refused are not in the event log the replay reads: they outlive
      // the wipe and still go downstream (the rebuilt profile lacks their events).
      const parked = this.#parked();
      const parkedRows = this.#parkedMessages();
      await this.#wipe(false);
      if (parked !== undefined && parkedRows.length > 0) await this.#keepParked(parkedRows, parked);
      if (
        replaying.previous > 0 ||
        replaying.browsers.length > 0 ||
        consent !== undefined ||
        replaying.offers !== undefined
      ) {
        this.#put('replaying', JSON.stringify(replaying));
        // Should the replay never finish, the alarm finishes it with what the row keeps
        // (see #retire): the consent record is proof of the person's choice.
        this.#alarmAt = Math.min(
          replayDeadline(replaying, Date.now()),
          this.#parked()?.due ?? Number.POSITIVE_INFINITY,
        );
        await this.ctx.storage.setAlarm(this.#alarmAt);
      }
      return replaying.previous;
    });
  }

  /**
   * After a replay: numbers this profile's versions on above `previous` (the version it had
   * before it was forgotten), so a consumer keeping the highest version takes its snapshots
   * again, and ends the replay. The person's consent record from before the replay stands
   * unless a newer one arrived meanwhile: the log holds no withdrawal (nothing is logged
   * without analytics), so the rebuilt record could otherwise grant what the person took
   * back. Every browser merged before the replay is linked again, whether or not the log
   * still holds one of its events: it is this person's alias still, and erasure and
   * retention reach it only through the list. The promos offered before stay counted. When
   * the log held nothing of the person, what it cannot rebuild (the consent record, merged
   * browsers, offers) is kept in an empty profile, with the person's first and last seen
   * times (their retention runs on as before). Returns the version now (0 when nothing was
   * rebuilt or kept) and, when personalization is granted, the profile's snapshot for
   * downstream (the live path sends one only then): by the consent record, or, when the
   * person never recorded a choice, by the consent the newest replayed event was accepted
   * under (`newestPersonalization`).
   */
  async continueVersion(
    previous: number,
    newestPersonalization = false,
  ): Promise<{ version: number; snapshot?: ProfileSummary }> {
    return this.#inOrder(async () => {
      const state = await this.#finishReplay(this.#replaying(), previous);
      if (!state) return { version: 0 };
      // As the choice stands today: none if made under an earlier policy version, and a
      // category the marketer disabled grants nothing.
      const config = await getConsentConfig(this.env, state.siteId, (p) => this.ctx.waitUntil(p));
      const personalization =
        state.consent !== undefined
          ? isGranted(consentInForce(state.consent.state, config), 'personalization')
          : newestPersonalization;
      if (!personalization) return { version: state.version };
      const { rules } = await this.#rules(state.siteId);
      return { version: state.version, snapshot: toSummary(state, Date.now(), rules) };
    });
  }

  /**
   * Ends a replay (the `replaying` row goes): puts back into the profile what the row kept
   * (see continueVersion) and numbers its version on above `previous`. Returns the profile,
   * or undefined when nothing is left of the person (erased, or nothing rebuilt or kept).
   */
  async #finishReplay(replaying: Replaying | undefined, previous: number): Promise<ProfileState | undefined> {
    if (replaying !== undefined) this.#drop('replaying');
    const state =
      this.#tombstone() === undefined ? (this.#load() ?? (await this.#keptOnly(replaying))) : undefined;
    if (!state) {
      if (this.#readKv().size === 0) await this.#wipe(false);
      return undefined;
    }
    keepConsent(state, replaying?.consent);
    addOffers(state.offers, replaying?.offers);
    const promo = laterPromo(state.promo, replaying?.promo);
    if (promo !== undefined) state.promo = promo;
    const browsers = replaying?.browsers ?? [];
    for (const anonymousId of browsers) linkBrowserTo(state, anonymousId);
    // In the order they had: the first browser keys the person's holdout group (decide), and
    // the log gives them back in its own order (the first one's events aged out, or never logged).
    if (browsers.length > 0)
      state.anonymousIds = [
        ...browsers.filter((id) => state.anonymousIds.includes(id)),
        ...state.anonymousIds.filter((id) => !browsers.includes(id)),
      ];
    if (state.version <= previous) state.version = previous + 1;
    this.#save(state);
    return state;
  }

  /**
   * Finishes a replay its CLI abandoned, as continueVersion would have (no snapshot goes
   * downstream: Directus keeps the profile from before the replay until the next event).
   * The profile holds only the events rebuilt before it stopped, so the person keeps the
   * first and last seen times they had: their retention runs on from their real activity.
   */
  async #finishAbandonedReplay(replaying: Replaying): Promise<void> {
    const state = await this.#finishReplay(replaying, replaying.previous);
    if (state === undefined || replaying.seen === undefined) return;
    state.lastSeen = laterOf(state.lastSeen, replaying.seen.last);
    if (replaying.seen.first < state.firstSeen) state.firstSeen = replaying.seen.first;
    this.#save(state);
  }

  /**
   * The profile a replay that rebuilt nothing leaves: empty, holding what the log cannot
   * give back (the caller adds the consent record, browsers and offers), when there is any
   * of it; else undefined. A consent record is proof of a choice, kept while the person is;
   * a merged browser still routes here. Sets the retention alarm as an event would.
   */
  async #keptOnly(replaying: Replaying | undefined): Promise<ProfileState | undefined> {
    const identity = replaying?.identity;
    if (replaying === undefined || identity === undefined) return undefined;
    const merged = replaying.browsers.some((id) => `anon:${id}` !== identity.personKey);
    if (replaying.consent === undefined && !merged && replaying.offers === undefined) return undefined;
    const now = new Date().toISOString();
    const state = emptyProfile(identity.siteId, identity.personKey, replaying.seen?.first ?? now);
    state.lastSeen = replaying.seen?.last ?? now;
    const userId = userIdOf(identity.personKey);
    if (userId !== undefined) state.userId = userId;
    this.#put('identity', JSON.stringify(identity));
    const { retentionMs } = await this.#rules(identity.siteId);
    await this.#scheduleRetention(Date.parse(state.lastSeen) + retentionMs);
    return state;
  }
}
