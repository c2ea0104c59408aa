/**
 * The tracker: builds CustomerAction events, passes them through the consent gate into
 * a bounded outbox, and delivers the outbox in batches — on count, size and time, with
 * backoff on failure, by beacon when the page is hidden, and from IndexedDB after a
 * reload or a crash once consent allows storage. `createAttune` wires these parts.
 */
import {
  type CollectResponse,
  type ConsentState,
  type CustomerAction,
  type DecideResponse,
  type ErrorBody,
  EVENT_NAME_PATTERN,
  type EventType,
  type JsonValue,
  LIMITS,
  PATHS,
  SCHEMA_VERSION,
} from '@attune/shared-schema/constants';
import { batchSize, collectBody, utf8Bytes } from './batching/batching.ts';
import { watchClicks } from './clicks/clicks.ts';
import {
  allowsCollection,
  applyChoice,
  builtInConsentConfig,
  type ConsentConfig,
  followChoice,
  parseConsentConfig,
} from './consent/consent.ts';
import { emitGoogleConsent } from './consent/google-consent-mode.ts';
import { listenTcf } from './consent/tcf.ts';
import { fetchDecisions } from './decide/decide.ts';
import { ulid } from './ids/ids.ts';
import { pageContext, watchHistory } from './page/page.ts';
import type { QueuedEvent } from './queue/queue.ts';
import { isRetryable, retryDelay } from './retry/retry.ts';
import { touchSession } from './session/session.ts';
import { browserPersistence, type Persistence, type VisitorRecord } from './store/store.ts';
import { beacon, getJson, post, safely } from './transport/transport.ts';

export { VERSION } from './page/page.ts';

export type Properties = Record<string, JsonValue>;

/** Something the tracker could not do, reported through `onError` (never thrown). */
export interface AttuneError {
  code: 'invalid_event' | 'rejected' | 'dropped' | 'unreachable';
  message: string;
  /** HTTP status of the collect answer, when there was one. */
  status?: number;
  /** Per-event reasons from a 207 answer, with paths like `batch[3].properties.price`. */
  errors?: { path: string; message: string }[];
}

export interface AttuneOptions {
  /** The Worker's origin, e.g. `https://edge.example.com` (or `/attune` in edge-proxy mode). */
  endpoint: string;
  /** The site's public write key (`pk_…`). */
  writeKey: string;
  /** Send when this many events are queued (default 20). */
  flushAt?: number;
  /** Send queued events after this many ms (default 5000). */
  flushInterval?: number;
  /** Unsent events kept, in memory and IndexedDB; the oldest are dropped beyond it (default 1000). */
  maxQueue?: number;
  /** Events held in memory before a consent choice (default 100). */
  maxWaiting?: number;
  /** Send a page view when created, and when the page is restored from the back/forward cache (default true). */
  autoPageView?: boolean;
  /** Send page views on history changes, for single-page apps (default false). */
  spaPageViews?: boolean;
  /** Track clicks on `[data-attune-track]` elements (default true). */
  trackClicks?: boolean;
  /** Categories and policy version until `/v1/config` answers (default: the built-in four). */
  consentConfig?: ConsentConfig;
  /** Mirror consent into Google Consent Mode v2 (`gtag('consent', …)`). */
  googleConsentMode?: boolean;
  /** Take consent from an IAB TCF v2.2 CMP through `__tcfapi`. */
  tcf?: boolean;
  /** Called with every problem: invalid events, final rejections, events dropped when the queue was full. */
  onError?: (error: AttuneError) => void;
}

/** The consent state as the page sees it. */
export interface ConsentSnapshot extends ConsentState {
  /** Whether the person has chosen under the current policy (false: show the banner). */
  decided: boolean;
}

export interface ConsentApi {
  /** Records the person's choice; unnamed categories keep their current value. */
  set(categories: Record<string, boolean>, source?: string): void;
  get(): ConsentSnapshot;
  /** Calls `listener` after every change; returns the unsubscribe function. */
  onChange(listener: (state: ConsentSnapshot) => void): () => void;
  /** The site's categories (labels, descriptions, defaults) for a banner, from `/v1/config`. */
  config(): Promise<ConsentConfig>;
}

export interface IdentifyOptions {
  /**
   * Made by the site's backend with the site's identity secret, hex in either case:
   * HMAC-SHA256 of the userId, or on a site taking expiring signatures `<expiry>.<hex>`, the
   * HMAC-SHA256 of `<expiry>.<userId>` (`<expiry>` a Unix time in seconds).
   */
  signature?: string;
}

export interface Attune {
  page(properties?: Properties): void;
  track(name: string, properties?: Properties): void;
  identify(userId: string, traits?: Properties, options?: IdentifyOptions): void;
  consent: ConsentApi;
  /** Sends every queued event now; resolves when the outbox is empty or waiting to retry. */
  flush(): Promise<void>;
  decide(slots: string[]): Promise<DecideResponse>;
  /** Forgets the signed-in person (sign-out): new anonymous id and session, no user id; events waiting for a choice are dropped (those held for the check of a stored choice go under it). */
  reset(): void;
  /** This browser's anonymous id, as events carry it: what a "delete my data" request names. */
  anonymousId(): string;
}

/** When to look again for events of a page that was still unloading when this one started. */
const ADOPT_AGAIN_MS = 3000;

/** How long flush() waits for the check of a stored choice (what the page held goes when it is hidden or left). */
const CONFIG_WAIT_MS = 3000;

/** Bytes a page may have in flight in keepalive requests and beacons (64 KB, minus headroom). */
const BEACON_BUDGET = 60 * 1024;

/** Creates a tracker. `persistence` is for tests and unusual hosts; browsers use the default. */
export function createAttune(
  options: AttuneOptions,
  persistence: Persistence = browserPersistence(ulid()),
): Attune {
  const {
    writeKey,
    flushAt = 20,
    flushInterval = 5000,
    maxQueue = 1000,
    maxWaiting = 100,
    autoPageView = true,
    googleConsentMode,
    onError,
  } = options;
  // Without one (a tag missing data-endpoint), the page's own origin: never a crash that leaves the stub in place.
  const endpoint = (options.endpoint || '').replace(/\/+$/, '');
  const collectUrl = endpoint + PATHS.collect;
  /** A Worker URL for `path` with the write key and `query` in its query. */
  const workerUrl = (path: string, query?: Record<string, string>) =>
    `${endpoint}${path}?${new URLSearchParams({ writeKey, ...query })}`;
  const gpc = (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl;
  const report = (
    code: AttuneError['code'],
    message: string,
    status?: number,
    errors?: AttuneError['errors'],
  ) => safely(() => onError?.({ code, message, status, errors }));

  let config = options.consentConfig ?? builtInConsentConfig();
  let configLoad: Promise<ConsentConfig> | undefined;
  /** The policy version of a choice this tab set aside because /v1/config serves a newer one. */
  let aside: string | undefined;
  /** The last choice an IAB TCF CMP reported. */
  let cmpChoice: Record<string, boolean> | undefined;
  // The visitor record, split: `ids` (anonymousId, userId, userIdSignature) is what events and
  // decide requests carry. A stored anonymous id wins; a record of a refusal alone has none.
  let {
    session,
    /** The person's choice; undefined until they make one (under the current policy). */
    consent: choice,
    proofs,
    ...ids
  }: VisitorRecord & { anonymousId: string } = { anonymousId: ulid(), ...persistence.load() };
  /**
   * A stored choice waits for /v1/config to confirm its policy version: until then this page's
   * events wait in memory, as before a choice (a newer version sets the choice aside).
   */
  let checking = !!choice;
  /** The choice as this tab last read or wrote it in the visitor record (JSON): another tab's change differs. */
  let seen = JSON.stringify(choice);
  const listeners = new Set<(state: ConsentSnapshot) => void>();
  /** Events made before any choice: memory only, released on grant, discarded on refusal. */
  let waiting: CustomerAction[] = [];
  /**
   * Consented, unsent events, oldest first (mirrored in IndexedDB while storage is allowed;
   * after a refusal, its proofs alone, mirrored in the visitor record).
   */
  let outbox: QueuedEvent[] = proofs ?? [];
  /** Ids of the events this page delivered (or dropped): their proofs leave the visitor record. */
  const delivered = new Set<string>();
  let storeScheduled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let retrying = false;
  /**
   * A send this tab starts on its own (online again, events taken over, back from the cache):
   * never during a retry's wait, which may be the Worker's Retry-After. (A wait that ran out
   * while offline has already ended: its flush found the browser offline.)
   */
  const nudge = () => {
    if (!retrying) void flush();
  };
  let attempt = 0;
  /** Events dropped because the outbox was full, since the page loaded. */
  let dropped = 0;
  let draining: Promise<void> | undefined;
  let referrer = document.referrer;

  const storing = () => allowsCollection(choice);
  /** Whether storage may hold this visitor's ids and events (a grant, even one a new policy version set aside). */
  let kept = storing();
  // Global Privacy Control turns marketing off, in a choice stored before it was switched on too,
  // and the record says so at once (until it does, this tab could not tell another tab's change).
  if (gpc && choice) {
    choice.categories.marketing = false;
    // GPC took away the only purpose that let this visitor's ids and events be stored: forget them
    // (the choice itself is saved again, without ids).
    if (kept && !storing()) chosen(true);
    persistSoon();
  }
  /** The unsent events, oldest first. */
  // Only a drain puts events in flight: without one, every queued event is unsent (no copy).
  const unsent = () => (draining ? outbox.filter((e) => !e._sending) : outbox);
  /** The next batch of unsent events (empty when there is nothing to send). */
  const nextBatch = (pending = unsent()) => pending.slice(0, batchSize(pending, writeKey));
  const snapshot = (): ConsentSnapshot => ({
    // A copy: a preferences page that edits what get() gave and passes it to set() must not
    // have edited the choice itself (set() would then find nothing changed, and record nothing).
    categories: { ...(choice?.categories ?? applyChoice({}, {}, config, gpc)) },
    policyVersion: config.policyVersion,
    decided: !!choice,
  });

  /** Writes the visitor record and the events not stored yet once per task: ids only while storage is allowed. */
  function persistSoon() {
    if (!storeScheduled)
      queueMicrotask(() => {
        storeScheduled = false;
        const record = persistence.load();
        const stored = record?.consent;
        // Another tab changed the choice (a withdrawal) and its storage event has not reached this
        // tab yet, which did not change it: take theirs, rather than write the older grant back
        // over it. (The choice only: this tab's own sign-in or sign-out stands.)
        if (stored && JSON.stringify(choice) === seen && JSON.stringify(stored) !== seen) take(stored);
        // A refusal is remembered without any id: the strictly necessary record of the choice.
        // While a grant is set aside, its record keeps it, with this tab's ids: a sign-out or
        // sign-in before the person chooses again must not come back on the next page.
        const consent = choice ?? (kept && allowsCollection(stored) && stored);
        // A refusal's proofs not delivered yet (see VisitorRecord): those the record holds that
        // no page here has delivered (another tab's stay), and this tab's own after a refusal,
        // kept without the user id and its signature (the browser's link takes them to the
        // person): a signed-out browser must not keep them.
        const proofs = [
          ...(record?.proofs ?? []).filter((p) => !delivered.has(p.id) && !outbox.some((e) => e.id === p.id)),
          ...(choice && !storing()
            ? outbox.map(({ id, json, bytes }) => ({
                id,
                json: JSON.stringify({ ...JSON.parse(json), userId: undefined, userIdSignature: undefined }),
                bytes,
              }))
            : []),
        ];
        // (With no choice to keep, as while a refusal is set aside, the record stays as it is, less
        // the proofs delivered.)
        const toSave = consent
          ? { ...((!choice || storing()) && { ...ids, session }), consent }
          : record?.proofs && record;
        if (toSave) {
          persistence.save({ ...toSave, proofs: proofs[0] && proofs });
          if (consent) seen = JSON.stringify(choice);
        }
        const fresh = outbox.filter((e) => !e._stored);
        if (storing() && fresh[0]) {
          for (const e of fresh) e._stored = true;
          // A write IndexedDB refused (quota, a blocked transaction) leaves them in memory
          // alone: unmarked, so a restore from the back/forward cache keeps them, and the next
          // write tries again.
          void persistence.store(fresh).then((written) => {
            if (!written) for (const e of fresh) e._stored = false;
          });
        }
      });
    storeScheduled = true;
  }

  /** Removes delivered (or dropped) events from the outbox and the store. */
  function settle(events: readonly QueuedEvent[]) {
    outbox = outbox.filter((e) => !events.includes(e));
    // Also while a new policy version has set the grant aside: what was stored under it is
    // still there, and would be sent again once the person chooses.
    if (kept) persistence.forget(events.map((e) => e.id));
    // A refusal's delivered proofs leave the visitor record, this tab's and those it sent for others.
    for (const e of events) delivered.add(e.id);
    persistSoon();
  }

  function record(type: EventType, name: string, fields: { properties?: Properties; traits?: Properties }) {
    if (!EVENT_NAME_PATTERN.test(name)) return report('invalid_event', `bad event name: ${name}`);
    const now = Date.now();
    session = touchSession(session, now);
    admit({
      id: ulid(now),
      type,
      name,
      timestamp: new Date(now).toISOString(),
      ...ids,
      sessionId: session.id,
      context: pageContext(referrer),
      ...fields,
      schemaVersion: SCHEMA_VERSION,
    });
    persistSoon();
  }

  /** Keeps the outbox to maxQueue events: the oldest beyond it are dropped (and forgotten), counted and reported. */
  function bound() {
    const overflow = outbox.splice(0, outbox.length - maxQueue);
    if (overflow[0]) {
      settle(overflow);
      dropped += overflow.length;
      report('dropped', `queue full: ${dropped} events dropped`);
    }
  }

  /**
   * The event's JSON; undefined when JSON cannot hold its properties (a cycle, a BigInt, a getter
   * that throws), reported with what JSON.stringify said, which names the culprit. Never thrown:
   * a throw here would also break the consent.set that releases held events.
   */
  function serialize(event: CustomerAction) {
    try {
      return JSON.stringify(event);
    } catch (error) {
      report('invalid_event', `${event.name}: ${error}`);
    }
  }

  /** The consent gate: send (stamped with the consent that allows it), wait in memory, or drop. */
  function admit(event: CustomerAction) {
    // The same rule as gate(): consent.updated always goes; others need a purpose that collects.
    // A choice's own proof goes at once; other events wait while a stored choice is being checked.
    if (!choice || (checking && event.type !== 'consent')) {
      // Held as it was when recorded (a copy): the page may change the objects it passed (a cart it
      // keeps filling, one props object reused) before the choice or the check, and the event must
      // say what it said then. What JSON cannot hold is reported now, as it would be on release.
      const held = serialize(event);
      // Beyond maxWaiting the oldest go, as bound() keeps the outbox (a negative count removes nothing).
      if (held) {
        waiting.push(JSON.parse(held));
        waiting.splice(0, waiting.length - maxWaiting);
      }
      return;
    }
    if (event.type !== 'consent' && !storing()) return;
    event.context = { ...event.context, consent: choice };
    const json = serialize(event);
    if (!json) return;
    const bytes = utf8Bytes(json);
    if (bytes > LIMITS.maxEventBytes)
      return report('invalid_event', `${event.name}: ${bytes} bytes, at most ${LIMITS.maxEventBytes}`);
    outbox.push({ id: event.id, json, bytes });
    bound();
    const pending = unsent();
    // A full batch (flushAt events, or the byte limit) goes out in a task of its own, so the
    // caller (often a click handler) is not kept waiting (flush() clears the interval timer);
    // otherwise the timer sends it.
    if (!retrying && batchSize(pending, writeKey, flushAt - 1) < pending.length) setTimeout(flush);
    else timer ??= setTimeout(flush, flushInterval);
  }

  function flush(): Promise<void> {
    // A stored choice being checked holds this page's events: they go once it stands (waited
    // for a few seconds at most: a hanging /v1/config holds them until the page is hidden or left).
    // So does a CMP's choice, taken once /v1/config has answered (see listenTcf below).
    return checking || configLoad ? configured().then(send) : send();
  }

  /** /v1/config's answer, waited for a few seconds at most (one that hangs must not hold the page for good). */
  function configured() {
    return Promise.race([loadConfig(), new Promise((resolve) => setTimeout(resolve, CONFIG_WAIT_MS))]);
  }

  function send(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    retrying = false;
    draining ??= drain().finally(() => {
      draining = undefined;
    });
    return draining;
  }

  /** Sends batches until the outbox is empty, the browser is offline, or an answer says "retry later". */
  async function drain() {
    for (let batch = nextBatch(); navigator.onLine && batch[0]; batch = nextBatch()) {
      for (const e of batch) e._sending = true;
      const answer = await post(collectUrl, collectBody(writeKey, batch));
      for (const e of batch) e._sending = false;
      // A 207 with Retry-After: some of the batch's browsers were rate limited, to be sent
      // again (the Worker dedupes the events it took, so the whole batch goes).
      if (!answer || isRetryable(answer.status) || answer.headers.has('retry-after')) {
        retrying = true;
        // A third try in a row with no answer at all: the browser hides why (an origin the
        // Worker does not allow, mixed content, a wrong endpoint), so say so, once per streak.
        if (!answer && attempt === 2) report('unreachable', `no answer from ${collectUrl}`);
        // An interval timer set while this request was in flight must not cut the wait short.
        clearTimeout(timer);
        timer = setTimeout(flush, retryDelay(attempt++, answer?.headers.get('retry-after')));
        return;
      }
      attempt = 0;
      settle(batch);
      const status = answer.status;
      // A 207 names the events it refused; so does a 400 when none of the batch was valid
      // (its error's per-field reasons). Any other final 4xx dropped the batch for a reason of its
      // own, which the Worker's message says (an unknown write key, an origin not allowed).
      const answered = `Worker answered ${status}`;
      if (status > 206)
        void answer
          .json()
          .then((body: Partial<CollectResponse & ErrorBody>) => {
            const errors = body.rejected?.flatMap((r) => r.errors) ?? body.error?.errors;
            report(
              errors ? 'invalid_event' : 'rejected',
              body.error?.message ? `${answered}: ${body.error.message}` : answered,
              status,
              errors,
            );
          })
          .catch(() => report('rejected', answered, status));
    }
  }

  /**
   * Hands over what the page held for the check of a stored choice, under that choice: the
   * check is over, or the page is hidden, left or signed out of before /v1/config answered
   * (later events are still held until it does).
   */
  function release() {
    const still = checking;
    checking = false;
    for (const event of waiting.splice(0)) admit(event);
    checking = still;
    persistSoon();
  }

  /** Hands the outbox to the browser as the page is hidden or unloads (not while offline or backing off). */
  function flushByBeacon() {
    if (checking) release();
    let budget = BEACON_BUDGET;
    for (let batch = nextBatch(); navigator.onLine && !retrying && batch[0]; batch = nextBatch()) {
      const body = collectBody(writeKey, batch);
      budget -= utf8Bytes(body);
      if (budget < 0 || !beacon(collectUrl, body)) return;
      settle(batch);
    }
  }

  /** Takes over events left by closed tabs or earlier pages, in id (time) order. */
  async function resume() {
    if (storing()) {
      const adopted = (await persistence.adopt()).filter((a) => !outbox.some((e) => e.id === a.id));
      // Withdrawn while the store answered (another tab, a CMP): not to be sent, nor kept.
      if (!storing()) return persistence.forget(adopted.map((e) => e.id));
      for (const e of adopted) {
        e._stored = true;
        outbox.push(e);
      }
      outbox.sort((a, b) => (a.id < b.id ? -1 : 1));
      // Over the bound, the oldest go, whichever page made them.
      bound();
      if (adopted[0]) void nudge();
    }
  }

  /** Fetches the site's consent config once; a new policy version asks the person again. */
  function loadConfig(): Promise<ConsentConfig> {
    configLoad ??= getJson(workerUrl(PATHS.config))
      .then((json) => {
        const checked = checking;
        checking = false;
        // (A config that makes the check throw is one that cannot be read: the held events must still go.)
        const next = safely(() => parseConsentConfig(json));
        if (next) {
          config = next;
          if (choice && choice.policyVersion !== next.policyVersion) {
            aside = choice.policyVersion;
            choice = undefined;
            // A CMP's choice stands under the new policy too (the CMP asks again itself when it must):
            // taken again now, or a TCF visitor would stay undecided, as the CMP reports no change.
            cmpChoice ? setConsent(cmpChoice, 'tcf') : notify();
          }
        }
        // The stored choice stands (or /v1/config could not be read): what this page recorded
        // meanwhile goes; a category the site has since disabled grants nothing (Google's tags, the claims).
        if (choice) {
          release();
          setConsent({}, 'config');
          // Google's tags were told to wait for the stored choice to be confirmed (below).
          if (checked && googleConsentMode) emitGoogleConsent('update', snapshot());
        }
        return config;
      })
      .catch(() => config);
    return configLoad;
  }

  /** Takes the visitor record as another tab left it. */
  function follow() {
    // (Another tab's unsent proofs are its own to send.)
    const { consent, proofs: _theirs, ...record }: VisitorRecord = persistence.load() ?? {};
    if (consent) {
      // A refusal is stored without ids: keep this page's anonymous id then (nothing is sent with it).
      // The ids and session (a sign-out) are followed whatever the choice's policy version.
      ({ session, ...ids } = { anonymousId: ids.anonymousId, ...record });
      // A tab undecided since it opened made its ids up, in memory, for the events it held: they go
      // as the browser's visitor, in its session, not as another visitor the Worker never sees again.
      if (!kept)
        for (const e of waiting) {
          e.anonymousId = ids.anonymousId;
          e.sessionId = session?.id;
        }
      take(consent);
    }
  }

  /**
   * Takes another tab's choice; of the older version this tab set aside when the policy
   * changed, only what it withdraws (followChoice): its grants would undo asking again.
   */
  function take(theirs: ConsentState) {
    const before = JSON.stringify(choice);
    choice = followChoice(theirs, choice, aside);
    seen = JSON.stringify(choice);
    // (Only a new choice: any write to the record, every event of a tab, fires a storage event.)
    // A withdrawal taken from the older version's choice was made in a tab that kept other
    // purposes, so it wiped nothing: this tab wipes what no purpose now allows it to keep.
    if (seen !== before) {
      chosen(theirs.policyVersion === aside);
      notify();
    }
  }

  function notify() {
    // One site listener that throws must not stop the others (Google Consent Mode among them) or consent.set.
    for (const listener of listeners) safely(() => listener(snapshot()));
  }

  /**
   * After the choice changed (here, or in another tab: `wipe` false, that tab wiped): events wait in
   * memory before a choice, released (oldest first) on a grant, discarded on a refusal. (admit()
   * sends them on: with a choice made, nothing goes back into `waiting`.)
   */
  function chosen(wipe?: boolean) {
    // (Taken out first: while a stored choice is being checked, admit() holds them back again.)
    const held = waiting.splice(0);
    if (storing()) {
      for (const event of held) admit(event);
      // Stored now: a grant made in another tab records no event here that would store them.
      persistSoon();
    } else {
      // Withdrawn (or refused): forget stored ids and events, drop what was not sent yet —
      // and what is in flight: should that request fail, it must not be sent again.
      if (wipe && kept) persistence.wipe();
      outbox = [];
    }
    kept = storing();
  }

  function setConsent(partial: Record<string, boolean>, source = 'api') {
    const categories = applyChoice(choice?.categories ?? {}, partial, config, gpc);
    if (JSON.stringify(categories) === JSON.stringify(choice?.categories)) return;
    choice = { categories, policyVersion: config.policyVersion };
    chosen(true);
    record('consent', 'consent.updated', {
      // The Worker refuses a proof without a source of 1–64 characters.
      properties: { ...choice, source: `${source}`.slice(0, 64) || 'api' },
    });
    void resume();
    notify();
  }

  const page = (properties?: Properties) => {
    const { path, title } = pageContext(referrer).page;
    record('page', 'page.viewed', { properties: { path, title, ...properties } });
  };
  const track = (name: string, properties?: Properties) => record('track', name, { properties });
  /**
   * A call the page makes, reported instead of thrown: odd arguments (a Symbol for a name, a
   * getter that throws, `null` options) must not break the page's handler that made the call,
   * nor the replay of the stub's queue (the calls after it). Each throws before it changes anything.
   */
  const guarded =
    <A extends unknown[]>(call: (...args: A) => void) =>
    (...args: A) => {
      try {
        call(...args);
      } catch (error) {
        report('invalid_event', String(error));
      }
    };

  if (googleConsentMode) {
    // Google's tags get the same choice: a default now, an update on every change (before the page's listeners).
    // A stored choice is not in force until /v1/config confirms its policy version: until then they
    // are told nothing is granted, and to wait for the update that follows (a grant under a policy
    // since replaced would otherwise reach them for that moment).
    emitGoogleConsent('default', checking ? { categories: {} } : snapshot(), checking);
    listeners.add((state) => emitGoogleConsent('update', state));
  }
  if (options.tcf)
    listenTcf((categories, source) => {
      cmpChoice = categories;
      // Taken under the site's policy version, which a first visit has not read yet: stamped with
      // the built-in one, the choice and every event of the page would count at the Worker as
      // consented to nothing (it judges each claim against the site's version). Meanwhile the
      // page's events wait, as before any choice.
      void configured().then(() => setConsent(categories, source));
    });
  if (choice) {
    // A returning visitor who chose before: check the policy is still current; pick up unsent
    // events — again a moment later, as the page this one replaced may still hold its tab lock;
    // send a refusal's proofs an earlier page could not.
    void loadConfig();
    void resume();
    setTimeout(resume, ADOPT_AGAIN_MS);
    if (outbox[0]) nudge();
  }
  // Another tab changed the visitor record (a choice, a withdrawal, a sign-out): follow it, rather
  // than write this tab's older state back over it with the next event.
  addEventListener('storage', follow);
  addEventListener('online', () => void resume().then(nudge));
  addEventListener('pagehide', () => {
    flushByBeacon();
    persistence.leave();
  });
  // Back from the back/forward cache: events other tabs took over while this page slept are
  // theirs now; the visitor record is taken as they left it (a sign-out there: its storage
  // event may not have reached this page yet); then a page view, as a load would have made
  // (the visitor sees the page again). Recorded earlier, it carried the signed-out user and
  // wrote them back, and could send the taken-over events with it.
  addEventListener('pageshow', (event) => {
    if (event.persisted)
      void persistence.rejoin().then((mine) => {
        if (mine) outbox = outbox.filter((e) => !e._stored || mine.includes(e.id));
        follow();
        if (autoPageView) page();
        return nudge();
      });
  });
  // visibilitychange bubbles from the document to the window.
  addEventListener('visibilitychange', () => document.hidden && flushByBeacon());
  if (options.trackClicks ?? true) watchClicks(track);
  if (options.spaPageViews)
    watchHistory((previous) => {
      referrer = previous;
      page();
    });
  if (autoPageView) page();

  const reset = () => {
    ids = { anonymousId: ulid() };
    session = undefined;
    // The person leaving made no choice for these: the next one's grant must not send them.
    // Held while a stored choice is checked, they are theirs, under that choice.
    if (checking) release();
    else waiting = [];
    persistSoon();
  };

  return {
    page: guarded(page),
    track: guarded(track),
    identify: guarded((userId: string, traits?: Properties, { signature }: IdentifyOptions = {}) => {
      // The Worker refuses every event that carries a user id without its signature: a call
      // without a well-formed one is not taken (the visitor stays who they were, and their
      // traits are not sent under someone else's id), and said so. Plain (64 hex digits) or
      // expiring (`<expiry>.<hex>`): which form the site takes is the Worker's to check. Nor a
      // user id the Worker would refuse, for the same reason: empty (a backend that signs
      // whatever id it has, none when signed out) or over 128 UTF-16 units (the wire's limit).
      if (!/^(\d{1,12}\.)?[\da-f]{64}$/i.test(`${signature}`) || !/^.{1,128}$/s.test(`${userId}`))
        return report('invalid_event', 'identify needs an id and a signature');
      // Another person signing in on this browser (the site did not call reset() at sign-out):
      // the browser stays linked to the first, so it starts afresh, or the Worker would go on
      // deciding by the first person's profile, and file this one's anonymous events there.
      if (ids.userId && ids.userId !== `${userId}`) reset();
      // A number (script-tag sites often pass one) would get every later event rejected: the wire wants a string.
      ids = { ...ids, userId: `${userId}`, userIdSignature: signature };
      record('identify', 'user.identified', { traits });
    }),
    consent: {
      set: guarded(setConsent),
      get: snapshot,
      onChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      config: loadConfig,
    },
    flush,
    decide: (slots) =>
      // The browser's id only when personalization is granted: without it the Worker serves each
      // slot's default. Never the user id and its signature: in a URL they would reach access logs,
      // and the signature is a lasting credential. The Worker follows the browser to the person it
      // signed in as (linked by the identify event).
      fetchDecisions(
        workerUrl(PATHS.decide, {
          slots: `${slots}`,
          ...(choice?.categories.personalization && { anonymousId: ids.anonymousId }),
        }),
      ),
    reset,
    anonymousId: () => ids.anonymousId,
  };
}
