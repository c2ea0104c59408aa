/**
 * Replay: rebuilds a person's ProfileDO from the events stored in Directus, so a new
 * scoring or segment rule can be tried on history. The profile is forgotten (no
 * tombstone), the person's events are ingested again in the order they arrived, and the
 * rebuilt profile goes downstream.
 * Only what the event log holds can be replayed: events accepted under analytics
 * consent, within EVENT_RETENTION_DAYS. The events the Worker made itself (promo.offered,
 * interest.shifted, …) are logged too, but never built the profile: they are skipped
 * (by name: ingest refuses those names from producers, see src/profile/edge-events.ts).
 * The person's consent records say when they last withdrew personalization, which the log
 * cannot (see lastWithdrawalOfPersonalization).
 */
import { Hono } from 'hono';
import { isAdmin } from '../admin/auth.ts';
import type { AppEnv } from '../app.ts';
import { directusFromEnv } from '../directus/client.ts';
import { parsePersonKey } from '../identity/index.ts';
import { forwardMessages } from '../ingest/outbox.ts';
import { profileMessage } from '../ingest/pipeline.ts';
import { traceparentOf } from '../observability/index.ts';
import { profileStub } from '../profile/client.ts';
import { isEdgeEvent } from '../profile/edge-events.ts';
import type { IngestResult } from '../profile/profile-do.ts';
import type { PersonKey, ProfileEventInput, ProfileSummary, ProfileView } from '../profile/types.ts';
import { getSiteById, type Site } from '../sites/index.ts';
import { withRecordedKeys } from '../sync/consumer.ts';
import { type ConsentRow, type EventRow, profileInputFromRow } from '../sync/mapping.ts';

const CHUNK = 100;

export interface ReplayResult {
  siteId: string;
  personKey: PersonKey;
  /**
   * The person's stored events replayed (not those the Worker made, see storedEvents, nor a
   * merged browser's own choices, see replayPerson).
   */
  events: number;
  accepted: number;
  /**
   * Stored events the replay could not read (a row written by hand, or damaged: no time to
   * apply it at) and left out; the rest is rebuilt.
   */
  unreadable: number;
  profile: ProfileView | null;
}

/**
 * Reads a person's stored events (including those of the browsers merged into them), oldest
 * first, without those the Worker made (see isEdgeEvent): applied as the person's own, they
 * would add to the counters and recent actions, and move lastSeen, as the live path never did.
 */
async function storedEvents(env: Env, siteId: string, keys: string[]): Promise<EventRow[]> {
  const directus = directusFromEnv(env);
  const rows = await directus.readAll<EventRow>('events', {
    filter: { _and: [{ site_id: { _eq: siteId } }, { person_key: { _in: keys } }] },
    // Arrival order: by request, then by when each event happened within it.
    sort: ['received_at', 'corrected_timestamp', 'id'],
  });
  return rows.filter((row) => !isEdgeEvent(row.name));
}

/**
 * When personalization was last withdrawn (epoch ms; -Infinity if never) under any of the
 * person's keys, by the consent records in Directus. Every choice is recorded there, a
 * "reject all" too, which the event log never holds (it grants no analytics, so its event
 * is not logged): replayed from the log alone, the events before it taught the rebuilt
 * profile again what the withdrawal had made the live profile forget. The time is when the
 * withdrawal reached the Worker, or when it was made if later (the live profile forgot on
 * arrival; a device offline, or with a slow clock, dates its choice earlier); a record
 * without a readable time counts as withdrawn now, on the side of forgetting.
 *
 * Any key's withdrawal covers every event: a browser's refusal before its sign-in may have
 * won the sign-in merge, which made the person forget everything (mergeProfiles), and
 * telling from the log whether it did is not attempted. So a rebuilt profile can forget
 * more than the live one kept (a browser's refusal that lost to the person's newer grant),
 * never learn what it forgot.
 */
async function lastWithdrawalOfPersonalization(env: Env, siteId: string, keys: string[]): Promise<number> {
  const records = await directusFromEnv(env).readAll<
    Pick<ConsentRow, 'categories' | 'chosen_at' | 'recorded_at'>
  >('consent_records', {
    filter: { _and: [{ site_id: { _eq: siteId } }, { person_key: { _in: keys } }] },
    fields: ['categories', 'chosen_at', 'recorded_at'],
  });
  let last = Number.NEGATIVE_INFINITY;
  for (const record of records) {
    if (record.categories?.personalization === true) continue;
    const times = [record.chosen_at, record.recorded_at]
      .map((t) => (typeof t === 'string' ? Date.parse(t) : Number.NaN))
      .filter(Number.isFinite);
    const at = times.length > 0 ? Math.max(...times) : Date.now();
    if (at > last) last = at;
  }
  return last;
}

/**
 * A stored event as the ProfileDO replays it: one made before the last withdrawal of
 * personalization (see lastWithdrawalOfPersonalization) teaches nothing, as live. Undefined
 * for a row that cannot be read (damaged, or written by hand: no time to apply it at).
 */
function replayInput(row: EventRow, withdrawnAt: number): ProfileEventInput | undefined {
  let input: ProfileEventInput;
  let at: number;
  try {
    input = profileInputFromRow(row);
    at = Date.parse(input.enrichment.correctedTimestamp);
  } catch {
    return undefined;
  }
  if (!Number.isFinite(at)) return undefined;
  if (!input.personalization || input.event.type === 'consent' || !(at < withdrawnAt)) return input;
  return {
    ...input,
    personalization: false,
    ...(input.consent && {
      consent: { ...input.consent, categories: { ...input.consent.categories, personalization: false } },
    }),
  };
}

/**
 * Rebuilds one person's ProfileDO from the event log, and sends the rebuilt profile
 * downstream (personalization granted) under a version above the one it replaces: the
 * consumer keeps the highest version, so a lower one would leave Directus's row as it
 * was, and ignore every later snapshot until the versions caught up.
 */
export async function replayPerson(env: Env, site: Site, personKey: PersonKey): Promise<ReplayResult> {
  const siteId = site.id;
  const keys = await withRecordedKeys(directusFromEnv(env), siteId, [personKey]);
  // A merged browser's own choices, made before it was merged, were that browser's: live,
  // they never were the person's record (the sign-in merge weighed the browser's record
  // against the person's). Their withdrawals still count (lastWithdrawalOfPersonalization).
  const rows = (await storedEvents(env, siteId, keys)).filter(
    (row) => row.person_key === personKey || row.type !== 'consent',
  );
  const withdrawnAt = await lastWithdrawalOfPersonalization(env, siteId, keys);
  // Every row is read before the profile is forgotten: one that cannot be read, found
  // part-way, left the person half-rebuilt, and a retry failed at the same row.
  // One that cannot be read is left out, and counted (ReplayResult.unreadable).
  const readable = rows
    .map((row) => replayInput(row, withdrawnAt))
    .filter((input): input is ProfileEventInput => input !== undefined);
  const stub = profileStub(env, siteId, personKey);
  const previous = await stub.forgetForReplay();
  let accepted = 0;
  // Whether the newest event was accepted under personalization (see continueVersion).
  let personalization = false;
  for (let i = 0; i < readable.length; i += CHUNK) {
    const inputs = readable.slice(i, i + CHUNK);
    // The RPC typing of IngestResult is too deep for TypeScript; the value is the plain result.
    const result = (await stub.ingest(siteId, personKey, inputs)) as unknown as IngestResult;
    accepted += result.accepted.length;
    personalization = inputs[inputs.length - 1]?.personalization ?? false;
  }
  // The person's consent record from before the replay stands (see continueVersion): the
  // snapshot goes downstream only when personalization is granted (the people rows are that
  // purpose's sink), as on the live path.
  const { version, snapshot } = (await stub.continueVersion(previous, personalization)) as unknown as {
    version: number;
    snapshot?: ProfileSummary;
  };
  // What the queue refuses is parked at the person's object and sent by its alarm: the
  // profile is rebuilt already, and a 502 saying the log could not be read would be false.
  if (rows.length > 0 && version > 0 && snapshot !== undefined)
    await forwardMessages(env, [
      profileMessage(site, { personKey, profile: snapshot, version }, traceparentOf(undefined)),
    ]);
  // The full view (ingest answers without the recent actions).
  const profile = (await stub.view()) as unknown as ProfileView | null;
  return {
    siteId,
    personKey,
    events: rows.length,
    accepted,
    unreadable: rows.length - readable.length,
    profile,
  };
}

export const replayRoutes = new Hono<AppEnv>();

/** POST /v1/admin/replay/:personKey?site=…, behind the admin token. */
replayRoutes.post('/v1/admin/replay/:personKey', async (c) => {
  if (!isAdmin(c.env, c.req.header('authorization'))) {
    return c.json(
      { error: { code: 'unauthorized', message: 'send Authorization: Bearer <ADMIN_TOKEN>' } },
      401,
    );
  }
  // The same rule as every other person key: any id the event schema accepts (spaces too).
  const personKey = parsePersonKey(c.req.param('personKey'));
  if (personKey === undefined) {
    return c.json(
      {
        error: {
          code: 'invalid_person',
          message: 'person key must look like anon:<anonymousId> or user:<userId>',
        },
      },
      400,
    );
  }
  // `site`, as the people routes name it; `siteId` as this route first did.
  const siteId = c.req.query('site') ?? c.req.query('siteId') ?? 'demo';
  const site = await getSiteById(c.env, siteId);
  if (!site) {
    return c.json(
      { error: { code: 'unknown_site', message: `no site ${JSON.stringify(siteId.slice(0, 64))}` } },
      404,
    );
  }
  // A browser merged into a person is that person's now: rebuilding it alone would cut the link.
  const mergedInto = await profileStub(c.env, siteId, personKey).aliasOf();
  if (mergedInto !== null) {
    return c.json(
      {
        error: {
          code: 'merged',
          message: `${personKey.slice(0, 140)} was merged into ${mergedInto.slice(0, 140)}: replay that person`,
        },
      },
      409,
    );
  }
  try {
    return c.json(await replayPerson(c.env, site, personKey));
  } catch (e) {
    const message = e instanceof Error ? e.message : 'replay failed';
    return c.json(
      { error: { code: 'directus_unavailable', message: `could not read the event log: ${message}` } },
      502,
    );
  }
});
