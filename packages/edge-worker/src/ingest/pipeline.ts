/**
 * The ingest pipeline shared by `/v1/collect` and the Segment-compatible API: refuses the
 * names of the edge's own events, verifies identity, applies the consent gate per purpose,
 * hands each person's events to their ProfileDO in order, runs triggers, and forwards what
 * each purpose allows to the queue.
 */
import {
  applyGpc,
  type ConsentConfig,
  type ConsentMessage,
  type ConsentState,
  type CustomerAction,
  claimedCategories,
  consentInForce,
  EDGE_EVENT_NAMES,
  type Enrichment,
  type EventError,
  isGranted,
  normalizeConsent,
  type ProfileMessage,
  PURPOSES,
  type Purpose,
  type QueueMessage,
} from '@attune/shared-schema';
import {
  type ConsentConfigRead,
  claimInForce,
  configInForce,
  readConsentConfig,
} from '../config/consent-config.ts';
import { enrichEvent, type RequestFacts } from '../enrich/index.ts';
import { checkUserIdSignature, type SignatureCheck } from '../identity/index.ts';
import { count, log } from '../observability/index.ts';
import { ingestProfile } from '../profile/client.ts';
import { EDGE_EVENT, isEdgeEvent } from '../profile/edge-events.ts';
import { consentSource, gpcOfChoice } from '../profile/model.ts';
import type { IngestResult } from '../profile/profile-do.ts';
import type { PersonKey, ProfileEventInput, ProfileSummary } from '../profile/types.ts';
import type { Site } from '../sites/index.ts';
import { runTriggers } from '../triggers/index.ts';
import { forwardMessages } from './outbox.ts';
import { eventsMessages, type ForwardedEvent, fitProfileMessage, sendShared } from './queue-producer.ts';

export interface PipelineInput {
  site: Site;
  /** Valid events; `facts` replaces the request's for one event (a Segment message's own client). */
  events: { index: number; event: CustomerAction; facts?: RequestFacts }[];
  facts: RequestFacts;
  /** `Sec-GPC: 1` on the request: marketing is off whatever the event says. */
  gpc: boolean;
  /** Authenticated with the site's server key: user ids are trusted, consent may come from the record. */
  trusted: boolean;
  traceparent: string;
  /** Prefix of error paths, e.g. 'batch'. */
  pathPrefix: string;
  /** Per-browser rate limit, checked by the browser's ProfileDO (none for trusted producers). */
  anonymousLimit?: { perSecond: number; burst: number };
}

export interface PipelineOutcome {
  accepted: number;
  duplicates: number;
  /** Dropped because no purpose is granted (consent) or the person was erased (tombstone). */
  dropped: number;
  rejected: EventError[];
  /** Events not applied because their browser is over its rate limit, and when to retry. */
  rateLimited: { events: number; retryAfterSeconds: number };
  /** Milliseconds spent in each stage, for the request log. */
  timings: { profileMs: number; queueMs: number };
}

export interface PipelineContext {
  waitUntil(promise: Promise<unknown>): void;
}

interface Judged {
  index: number;
  event: CustomerAction;
  enrichment: Enrichment;
  target: PersonKey;
  /** Undefined: the request carried no consent (server producers); the record decides. */
  consent?: ConsentState;
  /** The person an expired signature named (ProfileEventInput.claimedPerson). */
  claimedPerson?: PersonKey;
}

function consentOfConsentEvent(event: CustomerAction): ConsentState | undefined {
  const categories = event.properties?.categories;
  const policyVersion = event.properties?.policyVersion;
  if (categories === null || typeof categories !== 'object' || Array.isArray(categories)) return undefined;
  if (typeof policyVersion !== 'string') return undefined;
  const out: Record<string, boolean> = {};
  for (const [key, value] of Object.entries(categories)) if (typeof value === 'boolean') out[key] = value;
  return { categories: out, policyVersion };
}

/**
 * The consent an event carries, normalized against the site's categories (`config`, what
 * `read` puts in force), GPC applied.
 */
function claimedConsent(
  event: CustomerAction,
  read: ConsentConfigRead,
  config: ConsentConfig,
  gpc: boolean,
  trusted: boolean,
): ConsentState | undefined {
  const raw = event.type === 'consent' ? consentOfConsentEvent(event) : event.context?.consent;
  if (raw === undefined) {
    // A browser that sent no consent has granted nothing; a server producer defers to the record.
    return trusted
      ? undefined
      : applyGpc(normalizeConsent({ categories: {}, policyVersion: config.policyVersion }, config), gpc);
  }
  // A browser's choice made under another policy version than the site's grants nothing, as
  // everywhere else at the edge (claimInForce): the person is asked again. Before, a tab
  // opened before a marketer's change, which read /v1/config once, went on sending under the
  // old grant into the event log, the profile and marketing. A consent event is the choice
  // itself, kept as proof whatever its version; a server producer (trusted) does not track
  // the tag's policy versions, and its claim stands as it did.
  const judged =
    trusted || event.type === 'consent' ? normalizeConsent(raw, config) : claimInForce(raw, read);
  return applyGpc(
    judged ?? normalizeConsent({ categories: {}, policyVersion: config.policyVersion }, config),
    gpc,
  );
}

/** Why an event named as one of the edge's own (EDGE_EVENT_NAMES) is refused, and what to do instead. */
function reservedNameMessage(name: string): string {
  return `"${name}" is reserved for events the Attune edge makes itself (${EDGE_EVENT_NAMES.join(', ')}) and cannot be sent by a producer; send your event under a name of your own`;
}

const REFUND_FROM_SERVER_MESSAGE =
  '"order.refunded" is taken from the site\'s own server only: send it with the server key (the HTTP Basic username on /v1/collect, or a Segment server library\'s "Order Refunded"), not with the browser write key';

/** Granted purposes per consent object: a batch's events share a few (see `interned`). */
const purposesOf = new WeakMap<ConsentState, Purpose[]>();

function grantedPurposes(consent: ConsentState): Purpose[] {
  let purposes = purposesOf.get(consent);
  if (purposes === undefined) {
    purposes = PURPOSES.filter((p) => isGranted(consent, p));
    purposesOf.set(consent, purposes);
  }
  // A copy: each queue message owns its list.
  return [...purposes];
}

/** Runs the pipeline over a batch of valid events and returns what happened to them. */
export async function ingestBatch(
  env: Env,
  ctx: PipelineContext,
  input: PipelineInput,
): Promise<PipelineOutcome> {
  const { site, facts, gpc, trusted, traceparent } = input;
  const outcome: PipelineOutcome = {
    accepted: 0,
    duplicates: 0,
    dropped: 0,
    rejected: [],
    rateLimited: { events: 0, retryAfterSeconds: 0 },
    timings: { profileMs: 0, queueMs: 0 },
  };
  const read = await readConsentConfig(env, site.id);
  const config = configInForce(read);

  // 1. Identity and consent, per event. Equal consents share one object: a batch's events
  // usually carry the same choice, and the ProfileDO call's structured clone sends a shared
  // object once instead of once per event.
  const consents = new Map<string, ConsentState>();
  const interned = (consent: ConsentState | undefined): ConsentState | undefined => {
    if (consent === undefined) return undefined;
    const key = JSON.stringify(consent);
    const known = consents.get(key);
    if (known !== undefined) return known;
    consents.set(key, consent);
    return consent;
  };
  const judged: Judged[] = [];
  let consentDropped = 0;
  let signaturesExpired = 0;
  for (const { index, event: sent, facts: eventFacts } of input.events) {
    // The edge's own events are the edge's alone: one a producer sent would be applied to the
    // profile live but skipped by a replay (which tells them apart by name), and a browser
    // could plant promos or decisions in the event log (lift is measured from the latter).
    if (isEdgeEvent(sent.name)) {
      outcome.rejected.push({
        index,
        id: sent.id,
        errors: [{ path: `${input.pathPrefix}[${index}].name`, message: reservedNameMessage(sent.name) }],
      });
      continue;
    }
    // A refund is a fact of the shop's back office: from a browser (the public write key), a
    // shopper could take back their own purchases, and their conversions from the lift report.
    if (sent.name === 'order.refunded' && !trusted) {
      outcome.rejected.push({
        index,
        id: sent.id,
        errors: [{ path: `${input.pathPrefix}[${index}].name`, message: REFUND_FROM_SERVER_MESSAGE }],
      });
      continue;
    }
    let event = sent;
    let target: PersonKey = `anon:${event.anonymousId}`;
    let claimedPerson: PersonKey | undefined;
    if (event.userId !== undefined) {
      // The site's own server (trusted) needs no signature.
      const check: SignatureCheck = trusted
        ? { verdict: 'valid' }
        : await checkUserIdSignature(
            site,
            event.userId,
            event.userIdSignature,
            Date.now(),
            event.anonymousId,
          );
      if (check.verdict === 'invalid') {
        const field = event.userIdSignature === undefined ? 'userId' : 'userIdSignature';
        outcome.rejected.push({
          index,
          id: event.id,
          errors: [{ path: `${input.pathPrefix}[${index}].${field}`, message: check.message }],
        });
        continue;
      }
      if (check.verdict === 'expired') {
        // The site did sign this id once, but the signature no longer names anyone: the
        // event goes to the browser without the user id, and the ProfileDO lets it reach the
        // person it named only if the browser is linked to them (a browser that signed in
        // while the signature held: a long-open tab, an offline outbox); else it is refused
        // (IngestResult.unlinked).
        claimedPerson = `user:${event.userId}`;
        const { userId: _userId, userIdSignature: _signature, ...anonymous } = event;
        event = anonymous;
        signaturesExpired++;
      } else {
        target = `user:${event.userId}`;
        // Checked, the signature has done its work; kept, it would go on naming the person
        // from wherever the event is kept (queue messages, Directus's dead letters, the
        // ProfileDO's recent actions) for as long as it holds, for ever in the plain form.
        const { userIdSignature: _signature, ...verified } = event;
        event = verified;
      }
    }
    const consent = interned(claimedConsent(event, read, config, gpc, trusted));
    if (consent !== undefined && event.type !== 'consent' && grantedPurposes(consent).length === 0) {
      consentDropped++;
      continue;
    }
    const j: Judged = { index, event, enrichment: enrichEvent(event, eventFacts ?? facts), target };
    if (consent !== undefined) j.consent = consent;
    if (claimedPerson !== undefined) j.claimedPerson = claimedPerson;
    judged.push(j);
  }
  count('invalid', outcome.rejected.length);
  count('consent_dropped', consentDropped);
  count('signature_expired', signaturesExpired);
  outcome.dropped += consentDropped;

  // 2. Each browser's events go to their person in order; browsers run in parallel, except
  // that a run to a person another browser's run reached earlier in the batch waits for it
  // (see browserRuns). One failing (its object unavailable) does not stop the others: what
  // they applied is forwarded below before the failure is passed on, since the client's
  // retry finds those events duplicates and nothing would forward them then.
  const messages: QueueMessage[] = [];
  // Triggers wait for the whole batch (see triggersAfter): a later run may sign the
  // browser in, or change the person's choice.
  const triggers: PendingTriggers[] = [];
  const latest = new Map<PersonKey, IngestResult>();
  const profileStarted = Date.now();
  const applied = await Promise.allSettled(
    browserRuns(judged).map(async ({ events, runs }) => {
      let limit = input.anonymousLimit;
      try {
        for (const { events: run, after, done } of runs) {
          try {
            if (after !== undefined) await after;
            const first = run[0];
            if (!first) continue;
            const inputs: ProfileEventInput[] = run.map((j) => {
              const personalization = j.consent !== undefined && isGranted(j.consent, 'personalization');
              const item: ProfileEventInput = {
                event: forProfile(j.event),
                enrichment: {
                  receivedAt: j.enrichment.receivedAt,
                  correctedTimestamp: j.enrichment.correctedTimestamp,
                },
                personalization,
                gpc,
              };
              if (j.consent !== undefined) item.consent = j.consent;
              if (j.claimedPerson !== undefined) item.claimedPerson = j.claimedPerson;
              return item;
            });
            const result = await ingestProfile(env, site.id, first.target, inputs, limit);
            // The browser's bucket is checked once per request, by its first run.
            limit = undefined;
            if (result.rateLimited !== undefined) {
              outcome.rateLimited.events += events.length;
              outcome.rateLimited.retryAfterSeconds = Math.max(
                outcome.rateLimited.retryAfterSeconds,
                result.rateLimited,
              );
              count('rate_limited', events.length);
              for (const j of events) {
                outcome.rejected.push({
                  index: j.index,
                  id: j.event.id,
                  errors: [
                    {
                      path: `${input.pathPrefix}[${j.index}]`,
                      message: `rate limited: too many requests from this browser; retry after ${result.rateLimited} s`,
                    },
                  ],
                });
              }
              return;
            }
            // By id: a run's copy of an id the ProfileDO took (a client sending one id twice) is not refused.
            const taken = new Set(result.accepted);
            const unlinked = new Set((result.unlinked ?? []).filter((id) => !taken.has(id)));
            for (const j of run.filter((r) => unlinked.has(r.event.id))) {
              outcome.rejected.push({
                index: j.index,
                id: j.event.id,
                errors: [
                  {
                    path: `${input.pathPrefix}[${j.index}].userIdSignature`,
                    message:
                      'userIdSignature has expired, and this browser is not signed in as that user: identify with a fresh signature',
                  },
                ],
              });
            }
            count('invalid', unlinked.size);
            const forward = collectMessages(site, run, result, gpc, traceparent);
            messages.push(...forward.messages);
            outcome.accepted += result.accepted.length;
            outcome.duplicates += result.duplicates.length;
            outcome.dropped += result.dropped.length + result.consentDropped.length;
            count('accepted', result.accepted.length);
            count('duplicate', result.duplicates.length);
            count('suppressed', result.dropped.length);
            count('consent_dropped', result.consentDropped.length);
            const known = latest.get(result.personKey);
            // A run refused whole applied nothing: its result is a placeholder (the browser's key,
            // the default rules), not a newer state of anyone.
            const applied = unlinked.size < run.length;
            if (applied && (known === undefined || result.version >= known.version))
              latest.set(result.personKey, result);
            if (forward.triggers !== undefined)
              triggers.push({ personKey: result.personKey, ...forward.triggers });
          } finally {
            done?.();
          }
        }
      } finally {
        // A browser refused (rate limited) or failed part-way gives up its later runs: the
        // runs of other browsers that wait for them may go.
        for (const run of runs) run.done?.();
      }
    }),
  );
  // What the browsers that did apply their events trigger goes out even when another failed.
  const followUps = triggersAfter(triggers, latest, config).map((run) =>
    triggerFollowUp(env, site, run, gpc, traceparent),
  );

  // 3. The queue, after the response: the ProfileDO has already applied (and deduped) the
  // events, so a client retry could not re-send them anyway; waiting would only add latency.
  // A failed send is retried once, then parked at the person's ProfileDO, which sends it
  // again from its alarm (outbox.ts). Overlapping requests of this isolate share one send,
  // made by the first of them (sendShared).
  const queueStarted = Date.now();
  outcome.timings.profileMs = queueStarted - profileStarted;
  if (messages.length > 0) {
    const send = sendShared(env.EVENTS, messages, (all) => forwardMessages(env, all));
    if (send) ctx.waitUntil(send);
  }
  outcome.timings.queueMs = Date.now() - queueStarted;
  if (followUps.length > 0) ctx.waitUntil(Promise.all(followUps));
  const failed = applied.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return outcome;
}

/**
 * A run's events that may trigger something, until the batch is over: a recommendation
 * (their own consent grants personalization; it is logged only under analytics, the event
 * log's purpose) or a promo (their own consent grants marketing, the promotions sink).
 */
interface TriggerEvents {
  /** The run's events that may trigger what their consent can take, in order. */
  events: CustomerAction[];
  recommendable: CustomerAction[];
  promotable: CustomerAction[];
  /** The last recommendable event's consent: what a recommendation is logged under (if it grants analytics). */
  recommendConsent: CollectedUnder | undefined;
  /** The last promotable event's consent: what a promo is sent under. */
  promoConsent: CollectedUnder | undefined;
}

/**
 * The consent an event was judged by, with the id of the consent record it came from
 * (Enrichment.consentId): what the Worker emits for the event (a promo, a recommendation) is
 * queued under both, so that it too can be tied to the choice it was made under.
 */
interface CollectedUnder {
  consent: ConsentState;
  consentId: string | undefined;
}

interface PendingTriggers extends TriggerEvents {
  personKey: PersonKey;
}

/** One person's trigger run for a batch: their events, profile, and whether promos may go out. */
interface TriggerRun extends TriggerEvents {
  profile: ProfileSummary;
  marketing: boolean;
}

/**
 * The trigger runs a batch earns, one per person, judged once every run is applied: each
 * run's events go to the person who holds them at the end of the batch (a browser signed in
 * by a later run is that person's now), with that person's profile, and by that person's
 * recorded choice after the batch, as decide judges it (consentInForce): a withdrawal later
 * in the batch, in the same run or a later one (a sign-in unticking marketing), comes after
 * the events that would trigger. Promos need that choice to grant marketing (a person with
 * no choice on record goes by each event's own consent); recommendations need it to grant
 * personalization (runTriggers judges that again). A person whose choice allows neither
 * gets no run. `latest` holds each person's newest result in the batch.
 */
function triggersAfter(
  pending: PendingTriggers[],
  latest: Map<PersonKey, IngestResult>,
  config: ConsentConfig,
): TriggerRun[] {
  if (pending.length === 0) return [];
  // Which person holds each browser linked during the batch.
  const holder = new Map<PersonKey, PersonKey>();
  for (const [personKey, result] of latest) {
    for (const anonymousId of result.profile.anonymousIds) {
      const browser: PersonKey = `anon:${anonymousId}`;
      if (browser !== personKey) holder.set(browser, personKey);
    }
  }
  const byPerson = new Map<PersonKey, TriggerRun>();
  for (const { personKey: browser, ...run } of pending) {
    const personKey = holder.get(browser) ?? browser;
    const profile = latest.get(personKey)?.profile;
    if (profile === undefined) continue;
    const earlier = byPerson.get(personKey);
    // One trigger run per person and batch: a rule fires once for it, as within one run.
    if (earlier === undefined) {
      byPerson.set(personKey, {
        events: [...run.events],
        recommendable: [...run.recommendable],
        promotable: [...run.promotable],
        recommendConsent: run.recommendConsent,
        promoConsent: run.promoConsent,
        profile,
        marketing: false,
      });
    } else {
      earlier.events.push(...run.events);
      earlier.recommendable.push(...run.recommendable);
      earlier.promotable.push(...run.promotable);
      if (run.recommendConsent !== undefined) earlier.recommendConsent = run.recommendConsent;
      if (run.promoConsent !== undefined) earlier.promoConsent = run.promoConsent;
    }
  }
  const runs: TriggerRun[] = [];
  for (const run of byPerson.values()) {
    const recorded = run.profile.consent;
    const inForce = recorded === undefined ? undefined : consentInForce(recorded, config);
    run.marketing = run.promotable.length > 0 && (inForce === undefined || isGranted(inForce, 'marketing'));
    // A recommendation's only sink is the event log: the choice after the batch must still
    // grant analytics too (a withdrawal later in the batch comes after the cart add).
    const personalization =
      run.recommendable.length > 0 &&
      isGranted(inForce, 'personalization') &&
      isGranted(inForce, 'analytics');
    if (run.marketing || personalization) runs.push(run);
  }
  return runs;
}

/**
 * The event as its ProfileDO needs it: without `context` (page, campaign, library, the
 * consent claim), which the profile never reads; the queue messages keep the whole event.
 * Every byte here is structured-cloned into the Durable Object call.
 */
function forProfile(event: CustomerAction): CustomerAction {
  if (event.context === undefined) return event;
  const slim: CustomerAction = { ...event };
  delete slim.context;
  return slim;
}

/** One browser's consecutive events bound for one person, and its place in that person's order. */
interface Run {
  events: Judged[];
  /** Settles when the run before it to the same person, another browser's, is over. */
  after?: Promise<void>;
  /** Ends this run's turn, letting the run after it go; set only when another browser's run waits for it. */
  done?: () => void;
}

/** A browser's events, and its runs in batch order. */
interface BrowserRuns {
  events: Judged[];
  runs: Run[];
}

/**
 * Splits a batch's events (in batch order) into each browser's runs to one person. A run
 * ends where its browser's next event goes to someone else, or where another browser's event
 * to the same person comes between (a server message naming only its user, or another
 * browser of a signed-in user), so one person's runs hold separate stretches of the batch;
 * a run after another browser's run to its person waits for that one (`after`). Its own
 * browser's earlier runs it follows anyway: a browser applies its runs one by one. No wait
 * can come round in a circle: a run waits only for runs that begin earlier in the batch (the
 * previous of its browser, and `after`). A batch of one browser (the SDK's) waits for nothing.
 */
function browserRuns(judged: Judged[]): BrowserRuns[] {
  const browsers = new Map<string, BrowserRuns>();
  const lastRun = new Map<PersonKey, Run>();
  for (const j of judged) {
    const browserId = j.event.anonymousId;
    let browser = browsers.get(browserId);
    if (browser === undefined) {
      browser = { events: [], runs: [] };
      browsers.set(browserId, browser);
    }
    browser.events.push(j);
    const current = browser.runs.at(-1);
    const previous = lastRun.get(j.target);
    if (current !== undefined && previous === current) {
      current.events.push(j);
      continue;
    }
    const run: Run = { events: [j] };
    if (previous !== undefined && previous.events[0]?.event.anonymousId !== browserId) {
      run.after = new Promise<void>((resolve) => {
        previous.done = resolve;
      });
    }
    browser.runs.push(run);
    lastRun.set(j.target, run);
  }
  return [...browsers.values()];
}

/**
 * The queue messages each sink's purpose allows for what a ProfileDO accepted, and the
 * events triggers may see (see TriggerEvents): only those whose own consent allows what
 * they may trigger.
 */
function collectMessages(
  site: Site,
  run: Judged[],
  result: IngestResult,
  gpc: boolean,
  traceparent: string,
): { messages: QueueMessage[]; triggers: TriggerEvents | undefined } {
  const accepted = new Set(result.accepted);
  const messages: QueueMessage[] = [];
  let triggers: TriggerEvents | undefined;
  const forwarded: ForwardedEvent[] = [];
  let lastConsent: ConsentState | undefined;
  let lastEnrichment: Enrichment | undefined;
  for (const j of run) {
    if (!accepted.has(j.event.id)) continue;
    // Events that came without consent: the person's recorded choice, as the ProfileDO judged
    // it (by the site's categories as they stand today); an event whose claim a later choice
    // narrowed: the claim less that choice's withdrawals, as the ProfileDO reported it.
    const consent = applyGpc(
      result.consents[j.event.id] ?? j.consent ?? { categories: {}, policyVersion: '' },
      gpc,
    );
    // The consent record it was judged by, kept with the event as the proof of its collection.
    const named = result.consentIds[j.event.id];
    const consentId = named === undefined ? result.consentId : (named ?? undefined);
    const enrichment = consentId === undefined ? j.enrichment : { ...j.enrichment, consentId };
    lastConsent = consent;
    lastEnrichment = enrichment;
    const promotable = isGranted(consent, 'marketing');
    const recommendable = isGranted(consent, 'personalization');
    // Without analytics a recommendation has no sink (the event log); a promo still carries one.
    if (promotable || (recommendable && isGranted(consent, 'analytics'))) {
      triggers ??= {
        events: [],
        recommendable: [],
        promotable: [],
        recommendConsent: undefined,
        promoConsent: undefined,
      };
      triggers.events.push(j.event);
      if (recommendable) {
        triggers.recommendable.push(j.event);
        triggers.recommendConsent = { consent, consentId };
      }
      if (promotable) {
        triggers.promotable.push(j.event);
        triggers.promoConsent = { consent, consentId };
      }
    }
    const purposes = grantedPurposes(consent);
    if (j.event.type === 'consent') {
      const source = consentSource(j.event);
      const message: ConsentMessage = {
        kind: 'consent',
        siteId: site.id,
        personId: result.personKey,
        eventId: j.event.id,
        consent,
        // What the person answered, beside what the edge enforces of it: a choice made under
        // an older policy (a tab opened before a marketer's change, an offline device) names
        // categories the site has removed or disabled since, which normalizing drops or turns off.
        claimed: claimedCategories(consentOfConsentEvent(j.event)?.categories ?? {}),
        source,
        recordedAt: j.enrichment.receivedAt,
        // When the person chose (the event's corrected time): a choice flushed late from an
        // offline device is older than one recorded before it, and is proof only (ProfileDO).
        chosenAt: j.enrichment.correctedTimestamp,
        // Why marketing is off in the proof, when GPC turned it off (as the ProfileDO's record says).
        gpc: gpcOfChoice(gpc, source) === true,
        traceparent,
      };
      messages.push(message);
    }
    if (isGranted(consent, 'analytics') || isGranted(consent, 'marketing')) {
      forwarded.push({ event: j.event, enrichment, purposes });
    }
  }
  if (lastConsent && lastEnrichment && isGranted(lastConsent, 'analytics')) {
    for (const emitted of result.emitted) {
      const enrichment: Enrichment = {
        receivedAt: lastEnrichment.receivedAt,
        correctedTimestamp: emitted.timestamp,
      };
      if (lastEnrichment.consentId !== undefined) enrichment.consentId = lastEnrichment.consentId;
      forwarded.push({ event: emitted, enrichment, purposes: grantedPurposes(lastConsent) });
    }
  }
  // The run's events in as few messages as the limits allow: each queue message has a fixed cost.
  messages.push(...eventsMessages(site.id, result.personKey, traceparent, forwarded));
  if (lastConsent && isGranted(lastConsent, 'personalization')) {
    // One message for all of the run's pairs: each queue message has a fixed cost.
    if (result.covisits.length > 0)
      messages.push({ kind: 'covisits', siteId: site.id, pairs: result.covisits });
    if (result.changed) messages.push(profileMessage(site, result, traceparent));
  } else if (
    result.changed &&
    (result.personalizationCleared || run.some((j) => j.event.type === 'consent' && accepted.has(j.event.id)))
  ) {
    // A choice that withdrew personalization (this run's, or a browser's merged in by a
    // sign-in): the ProfileDO forgot what it had learned, and Directus must too (its row would
    // otherwise keep the interests and the old consent).
    messages.push(profileMessage(site, result, traceparent));
  }
  return { messages, triggers };
}

/**
 * The person's profile snapshot for downstream (Directus keeps the highest version per
 * person), fitted to one queue message: a snapshot over it (large traits) goes without its
 * largest traits and counters (fitProfileMessage), logged without them, instead of failing
 * the sendBatch it shares with other people's messages.
 */
export function profileMessage(
  site: Site,
  result: Pick<IngestResult, 'personKey' | 'profile' | 'version'>,
  traceparent: string,
): ProfileMessage {
  const p = result.profile;
  const profile: ProfileMessage['profile'] = {
    anonymousIds: p.anonymousIds,
    traits: p.traits,
    interests: p.interests,
    segments: p.segments,
    counters: p.counters,
    firstSeen: p.firstSeen,
    lastSeen: p.lastSeen,
  };
  if (p.userId !== undefined) profile.userId = p.userId;
  if (p.consent !== undefined) profile.consent = p.consent;
  const fitted = fitProfileMessage({
    kind: 'profile',
    siteId: site.id,
    personId: result.personKey,
    version: result.version,
    profile,
    traceparent,
  });
  if (fitted.omitted > 0)
    log('warn', 'queue.profile_trimmed', { siteId: site.id, entriesOmitted: fitted.omitted });
  return fitted.message;
}

/**
 * Runs the site's triggers for a person's batch; forwards what they emit, each under the
 * consent of the events that may earn it: a recommendation under the last recommendable
 * event's, when it grants analytics (the event log is its sink), a promo under the last
 * promotable event's.
 */
async function triggerFollowUp(
  env: Env,
  site: Site,
  run: TriggerRun,
  gpc: boolean,
  traceparent: string,
): Promise<void> {
  try {
    const extra = await runTriggers(env, {
      siteId: site.id,
      events: run.events,
      profile: run.profile,
      marketing: run.marketing && !gpc,
      recommendable: new Set(run.recommendable),
      promotable: new Set(run.promotable),
    });
    if (extra.length === 0) return;
    const receivedAt = new Date().toISOString();
    const forwarded: ForwardedEvent[] = [];
    for (const event of extra) {
      const promo = event.name === EDGE_EVENT.promoOffered;
      const under = promo ? run.promoConsent : run.recommendConsent;
      if (under === undefined || (!promo && !isGranted(under.consent, 'analytics'))) continue;
      const enrichment: Enrichment = { receivedAt, correctedTimestamp: event.timestamp };
      if (under.consentId !== undefined) enrichment.consentId = under.consentId;
      forwarded.push({ event, enrichment, purposes: grantedPurposes(under.consent) });
    }
    await forwardMessages(env, eventsMessages(site.id, run.profile.personKey, traceparent, forwarded));
  } catch (err) {
    log('error', 'triggers.failed', { siteId: site.id, error: err instanceof Error ? err.name : 'unknown' });
  }
}
