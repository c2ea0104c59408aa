/**
 * Operator routes, behind `Authorization: Bearer <ADMIN_TOKEN>`: access to everything
 * held about a person, at the edge and in Directus (`GET /v1/people/:id`), erasure
 * (`DELETE /v1/people/:id`), resending dead letters (`POST /v1/admin/dead-letters/resend`),
 * the outcome counters (`GET /v1/admin/stats`) and a lift report on demand
 * (`POST /v1/admin/lift`). The people routes also take the site's own privacy token, for
 * that site's people only.
 */
import { COLLECT_STATUS, type ErasureMessage, errorBody } from '@attune/shared-schema';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app.ts';
import { MAX_LIFT_DAYS, reportLift } from '../decide/lift-report.ts';
import { DirectusError, directusFromEnv } from '../directus/client.ts';
import { anonymousIdOf, parsePersonKey, userIdOf } from '../identity/index.ts';
import { readBodyLimited } from '../ingest/body.ts';
import { QUEUE_SEND_BUDGET_MS, sendMessages } from '../ingest/queue-producer.ts';
import { log, readStats, traceparentOf } from '../observability/index.ts';
import { eraseProfile, exportProfile } from '../profile/client.ts';
import type { ProfileExport } from '../profile/profile-do.ts';
import type { PersonKey } from '../profile/types.ts';
import { newUlid } from '../profile/ulid.ts';
import { getSiteById, getSiteByWriteKey, listSites, ownsUnsitedRows, type Site } from '../sites/index.ts';
import { parseCursor, ResendFailed, type ResendSelection, resendDeadLetters } from '../sync/resend.ts';
import { isAdmin, mayActOnPeopleOf, siteOfPrivacyToken } from './auth.ts';
import { type DownstreamHoldings, downstreamKeys, readDownstream, streamAccessAnswer } from './downstream.ts';

export const adminRoutes = new Hono<AppEnv>();

/** Every answer of the people routes, errors included: they carry (or are about) a person's data. */
const PEOPLE_HEADERS = { 'cache-control': 'no-store' } as const;

adminRoutes.use('/v1/people/*', async (c, next) => {
  // The operator's admin token, or the site's own privacy token for that site's people.
  const authorization = c.req.header('authorization');
  const requested = c.req.query('site');
  const site = await siteOf(c.env, requested);
  if (site !== undefined && mayActOnPeopleOf(c.env, site, authorization)) {
    await next();
    // On whatever answered: an error the route threw is already the error handler's answer here.
    markNoStore(c);
    return;
  }
  // Only a caller holding a real token is told that `?site` is what is wrong; any other gets
  // the same 401 whatever `?site` says, so it learns nothing about which site ids exist.
  const admin = isAdmin(c.env, authorization);
  const tokenSite = admin ? undefined : await siteOfPrivacyToken(c.env, authorization);
  const message = site === undefined ? await unresolvedSite(c.env, requested, admin, tokenSite) : undefined;
  if (message !== undefined)
    return c.json(errorBody('invalid_envelope', message), COLLECT_STATUS.badRequest, PEOPLE_HEADERS);
  return c.json(
    errorBody(
      'unauthorized',
      'send Authorization: Bearer <admin token, or the privacy token of the site named by ?site=<site id>>',
    ),
    COLLECT_STATUS.unauthorized,
    PEOPLE_HEADERS,
  );
});
/**
 * Marks the answer `no-store`. A method no people route serves went on to the edge proxy
 * (the router reads `/%761/people/…` as `/v1/people/…`, the proxy does not), whose answer is
 * the origin's, with headers that cannot be changed: that one is copied (setting the header
 * on it threw, and the answer was a 500).
 */
function markNoStore(c: Context<AppEnv>): void {
  try {
    c.res.headers.set('cache-control', PEOPLE_HEADERS['cache-control']);
  } catch {
    const copy = new Response(c.res.body, c.res);
    copy.headers.set('cache-control', PEOPLE_HEADERS['cache-control']);
    c.res = undefined;
    c.res = copy;
  }
}

adminRoutes.use('/v1/admin/*', async (c, next) => {
  if (!isAdmin(c.env, c.req.header('authorization'))) {
    return c.json(
      errorBody('unauthorized', 'send Authorization: Bearer <admin token>'),
      COLLECT_STATUS.unauthorized,
    );
  }
  await next();
});

/** The site of an admin request: `?site=<id>`, or the only site when there is one. */
async function siteOf(env: Env, siteId: string | undefined): Promise<Site | undefined> {
  if (siteId !== undefined) return getSiteById(env, siteId);
  const sites = await listSites(env);
  return sites.length === 1 ? sites[0] : undefined;
}

/**
 * Why `?site` named no site, told only to a caller holding the admin token or a site's
 * privacy token (`tokenSite`); undefined when the caller is to get the plain 401. A privacy
 * token's holder is told its own site's id, never another's, and an id that names no site
 * gets it the same 401 as another site's id: it cannot tell other sites' ids from made-up
 * ones. Write keys are public (every page of a site carries its own): naming one reveals
 * nothing.
 */
async function unresolvedSite(
  env: Env,
  requested: string | undefined,
  admin: boolean,
  tokenSite: Site | undefined,
): Promise<string | undefined> {
  if (!admin && tokenSite === undefined) return undefined;
  const pass = `pass ?site=${tokenSite === undefined ? '<site id>' : tokenSite.id}`;
  if (requested === undefined)
    return (await listSites(env)).length === 0
      ? "no site is configured (the Worker's log says what is wrong with ATTUNE_SITES or ATTUNE_SITE_SECRETS)"
      : `several sites are configured: ${pass}, the id of the site whose people this is (as in ATTUNE_SITES)`;
  const owner = await getSiteByWriteKey(env, requested);
  if (owner !== undefined)
    return `?site is a write key, not a site id${admin ? ` (site ${owner.id}'s)` : ''}: ${pass}`;
  return admin ? `unknown site; ${pass}, the id of the site as in ATTUNE_SITES` : undefined;
}

type Target = { ok: true; site: Site; personKey: PersonKey } | { ok: false; message: string };

async function target(env: Env, id: string, siteId: string | undefined): Promise<Target> {
  const site = await siteOf(env, siteId);
  if (!site) return { ok: false, message: 'unknown site; pass ?site=<site id>' };
  const personKey = parsePersonKey(id);
  if (!personKey)
    return { ok: false, message: 'expected a person id like "user:<userId>" or "anon:<anonymousId>"' };
  return { ok: true, site, personKey };
}

/**
 * What the browsers merged into a person (their profiles' `anonymousIds`, at most
 * MAX_BROWSERS each) still hold at the edge: only those holding anything besides their link.
 */
async function heldByBrowsers(
  env: Env,
  siteId: string,
  asked: PersonKey,
  exports: readonly ProfileExport[],
): Promise<({ personId: PersonKey } & ProfileExport)[]> {
  const keys = new Set<PersonKey>();
  for (const held of exports) {
    for (const id of held.profile?.anonymousIds ?? []) if (`anon:${id}` !== asked) keys.add(`anon:${id}`);
    // Those a failed retention run has yet to forget are the person's still.
    for (const key of held.retiring?.browsers ?? []) if (key !== asked) keys.add(key);
  }
  const found = await Promise.all(
    [...keys].map(async (personId) => ({ personId, ...(await exportProfile(env, siteId, personId)) })),
  );
  return found.filter(
    (b) =>
      b.profile !== undefined ||
      b.handedOver !== undefined ||
      (b.parked?.length ?? 0) > 0 ||
      b.seenEventIds > 0 ||
      b.replaying !== undefined,
  );
}

/**
 * Everything held about a person: what the edge holds (ProfileDO) and, unless
 * `?scope=edge`, what Directus holds (see downstream.ts). An answer is complete or an
 * error: when Directus cannot be read, 502, never a part passed off as the whole.
 */
adminRoutes.get('/v1/people/:id', async (c) => {
  const t = await target(c.env, c.req.param('id'), c.req.query('site'));
  if (!t.ok) return c.json(errorBody('invalid_envelope', t.message), COLLECT_STATUS.badRequest);
  const held = await exportProfile(c.env, t.site.id, t.personKey);
  const atEdge =
    held.profile !== undefined ||
    held.aliasOf !== undefined ||
    held.erasedAt !== undefined ||
    // A replay under way (or abandoned) holds the person's consent record and browsers in its row.
    held.replaying !== undefined ||
    // A retention run that has yet to forget the person's merged browsers (they name the person).
    held.retiring !== undefined ||
    held.seenEventIds > 0 ||
    // Messages the queue refused, kept to be sent again: events and choices about the person.
    (held.parked?.length ?? 0) > 0;
  // A browser merged into a person is that person's now (DELETE erases the person too): what
  // the edge holds of the person is part of the answer (before, only the browser's link was).
  const person =
    held.aliasOf !== undefined
      ? { personId: held.aliasOf, ...(await exportProfile(c.env, t.site.id, held.aliasOf)) }
      : undefined;
  // The person's merged browsers: each object keeps, for a while, what it still holds of
  // them — a copy of its profile until the person confirms they stored it, messages the queue
  // refused — which DELETE erases, so the answer lists them (before, only the person's object).
  const browsers = await heldByBrowsers(c.env, t.site.id, t.personKey, [held, ...(person ? [person] : [])]);
  const answer = {
    siteId: t.site.id,
    personId: t.personKey,
    ...held,
    ...(person && { person }),
    ...(browsers.length > 0 && { browsers }),
  };
  if (c.req.query('scope') === 'edge') {
    if (!atEdge) return c.json(errorBody('not_found', 'nothing is held about this person at the edge'), 404);
    return c.json(answer);
  }
  let downstream: DownstreamHoldings;
  try {
    const keys = downstreamKeys(t.personKey, held);
    if (person !== undefined) keys.push(...downstreamKeys(person.personId, person));
    downstream = await readDownstream(directusFromEnv(c.env, { timeoutMs: 10_000 }), t.site.id, keys, {
      unsitedOrders: await ownsUnsitedRows(c.env, t.site.id),
    });
  } catch (e) {
    return c.json(directusUnavailable(e), 502);
  }
  const heldDownstream = [
    downstream.people,
    downstream.consentRecords,
    downstream.firstEvents,
    downstream.deadLetters,
    downstream.orders,
  ].some((rows) => rows.length > 0);
  if (!atEdge && !heldDownstream)
    return c.json(errorBody('not_found', 'nothing is held about this person'), 404);
  // Events stream in page by page; a Directus failure from here on breaks the answer off.
  const body = streamAccessAnswer(answer, downstream, (e) =>
    log('error', 'access.stream_failed', { error: e instanceof Error ? e.name : 'unknown' }),
  );
  return c.body(body, 200, { 'content-type': 'application/json; charset=UTF-8' });
});

function directusUnavailable(e: unknown) {
  const reason = e instanceof Error ? e.message.slice(0, 200) : 'unknown error';
  return {
    error: {
      code: 'directus_unavailable',
      message: `could not read what Directus holds about this person (${reason}); try again, or pass ?scope=edge for the edge's part alone`,
    },
  };
}

adminRoutes.delete('/v1/people/:id', async (c) => {
  const t = await target(c.env, c.req.param('id'), c.req.query('site'));
  if (!t.ok) return c.json(errorBody('invalid_envelope', t.message), COLLECT_STATUS.badRequest);
  const erased = await eraseProfile(c.env, t.site.id, t.personKey);
  const message: ErasureMessage = {
    kind: 'erasure',
    siteId: t.site.id,
    personId: erased.personKey,
    anonymousIds: erased.anonymousIds,
    requestedAt: new Date().toISOString(),
    erasureId: newUlid(),
    reason: 'request',
    traceparent: traceparentOf(c.req.header('traceparent')),
  };
  const userId = erased.userId ?? userIdOf(erased.personKey);
  if (userId !== undefined) message.userId = userId;
  const anonymousId = anonymousIdOf(t.personKey);
  if (anonymousId !== undefined && !message.anonymousIds.includes(anonymousId)) {
    message.anonymousIds.push(anonymousId);
  }
  // Erase downstream even when the edge held nothing: Directus may still have rows.
  try {
    await sendMessages(c.env.EVENTS, [message]);
  } catch (e) {
    log('error', 'person.erasure_not_queued', {
      siteId: t.site.id,
      error: e instanceof Error ? e.name : 'unknown',
    });
    // The edge part is done and remembers whom it took (until its tombstone expires): the
    // same DELETE sends the same erasure downstream.
    return c.json(
      {
        error: {
          code: 'queue_unavailable',
          message:
            'erased at the edge, but the erasure for Directus could not be queued; send the same DELETE again',
        },
      },
      503,
      { 'retry-after': '5' },
    );
  }
  log('info', 'person.erased', { siteId: t.site.id, held: erased.erased });
  // The erasure id is the key of its proof in Directus (erasure_proofs): opened when the sync
  // starts the erasure, its erased_at set once the erasure is done.
  return c.json(
    {
      erased: true,
      personId: erased.personKey,
      anonymousIds: erased.anonymousIds.length,
      erasureId: message.erasureId,
    },
    200,
  );
});

adminRoutes.get('/v1/admin/stats', async (c) => {
  return c.json({ counters: await readStats(c.env) });
});

const ResendBodySchema = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(64)).min(1).max(1000) }),
  z.strictObject({
    site: z.string().min(1).max(255).optional(),
    limit: z.int().min(1).max(1000).optional(),
    after: z.string().max(64).optional(),
  }),
]);

const RESEND_SHAPE =
  'expected { "ids": [letter ids, at most 1000] } or { "site"?: "<site id>", "limit"?: 1–1000, "after"?: "<next of the previous answer>" }';

/**
 * Sends dead letters' original messages back to the EVENTS queue and deletes their rows
 * (see sync/resend.ts). Body (JSON, optional): `ids` to resend those letters, or `site`,
 * `limit` (default 100, at most 1,000) and `after` for the oldest ones; `more: true` in
 * the answer means call again with `after` set to its `next`.
 */
adminRoutes.post('/v1/admin/dead-letters/resend', async (c) => {
  const read = await readBodyLimited(c.req.raw, 128 * 1024);
  if (!read.ok) {
    return read.reason === 'too_large'
      ? c.json(errorBody('too_large', 'the body is over 128 KB'), COLLECT_STATUS.tooLarge)
      : c.json(errorBody('invalid_envelope', 'the body could not be read'), COLLECT_STATUS.badRequest);
  }
  let json: unknown = {};
  if (read.text.trim() !== '') {
    try {
      json = JSON.parse(read.text);
    } catch {
      return c.json(
        errorBody('invalid_envelope', `the body is not JSON; ${RESEND_SHAPE}`),
        COLLECT_STATUS.badRequest,
      );
    }
  }
  const parsed = ResendBodySchema.safeParse(json);
  if (!parsed.success) {
    // The union's own message says nothing useful: name the branch the caller meant.
    const meant = json !== null && typeof json === 'object' && 'ids' in json ? 0 : 1;
    const branch = (meant === 0 ? ResendBodySchema.options[0] : ResendBodySchema.options[1]).safeParse(json);
    const issue = branch.error?.issues[0] ?? parsed.error.issues[0];
    return c.json(
      errorBody(
        'invalid_envelope',
        `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}; ${RESEND_SHAPE}`,
      ),
      COLLECT_STATUS.badRequest,
    );
  }
  let selection: ResendSelection;
  if ('ids' in parsed.data) selection = { ids: parsed.data.ids };
  else {
    const { site, limit, after } = parsed.data;
    const cursor = after === undefined ? undefined : parseCursor(after);
    if (after !== undefined && cursor === undefined) {
      return c.json(
        errorBody('invalid_envelope', `after: not a cursor; pass the "next" of the previous answer`),
        COLLECT_STATUS.badRequest,
      );
    }
    selection = {
      limit: limit ?? 100,
      ...(site !== undefined && { siteId: site }),
      ...(cursor !== undefined && { after: cursor }),
    };
  }
  const directus = directusFromEnv(c.env, { timeoutMs: 10_000 });
  try {
    const report = await resendDeadLetters(directus, c.env.EVENTS, selection);
    log('info', 'dead_letters.resent', { resent: report.resent, unsendable: report.unsendable.length });
    return c.json(report);
  } catch (e) {
    if (!(e instanceof ResendFailed)) throw e;
    const reason = e.message.slice(0, 200);
    const done = `${e.resent} letters were resent and deleted before`;
    const message =
      e.stage === 'delete'
        ? `${done} deleting the next ones failed (${reason}): those were resent but are still in dead_letters; resending them again is safe except for covisit letters, whose counts would be added twice`
        : e.stage === 'send' && e.unanswered
          ? `${done} the queue did not answer the next send within ${QUEUE_SEND_BUDGET_MS / 1000} s: those letters are still in dead_letters and may have reached the queue all the same; calling again is safe except for covisit letters, whose counts would be added twice`
          : e.stage === 'send'
            ? `${done} sending the next ones to the queue failed (${reason}); call again`
            : `${done} reading dead_letters failed (${reason}); call again`;
    log('warn', 'dead_letters.resend_failed', {
      stage: e.stage,
      resent: e.resent,
      ...(e.unanswered && { unanswered: true }),
    });
    return c.json(
      {
        error: { code: e.stage === 'send' ? 'queue_unavailable' : 'directus_unavailable', message },
        resent: e.resent,
      },
      502,
    );
  }
});

/**
 * Measures lift over the site's last `days` days (default 28) now, writes the report to
 * Directus `lift_reports` (as the daily cron does) and answers it: counts and rates, never
 * a person.
 */
adminRoutes.post('/v1/admin/lift', async (c) => {
  const requested = c.req.query('site');
  const site = await siteOf(c.env, requested);
  if (site === undefined) {
    const message = (await unresolvedSite(c.env, requested, true, undefined)) ?? 'unknown site';
    return c.json(errorBody('invalid_envelope', message), COLLECT_STATUS.badRequest);
  }
  const daysText = c.req.query('days');
  const days = daysText === undefined ? undefined : Number(daysText);
  if (days !== undefined && (!/^\d+$/.test(daysText ?? '') || days < 1 || days > MAX_LIFT_DAYS)) {
    return c.json(
      errorBody('invalid_envelope', `days: expected a whole number of days from 1 to ${MAX_LIFT_DAYS}`),
      COLLECT_STATUS.badRequest,
    );
  }
  try {
    return c.json(await reportLift(c.env, site.id, days === undefined ? {} : { days }));
  } catch (e) {
    if (!(e instanceof DirectusError)) throw e;
    const reason = e.message.slice(0, 200);
    log('warn', 'lift.failed', { siteId: site.id, error: reason });
    // Refused (a wrong token, or no lift_reports: Directus answers 403 for a collection that
    // does not exist) is a setup to fix, which trying again never would.
    const refused = e.status === 401 || e.status === 403;
    return c.json(
      {
        error: {
          code: 'directus_unavailable',
          message: refused
            ? `Directus refused to let the Worker read the event log or write lift_reports (${reason}): check DIRECTUS_TOKEN, and run the Directus bootstrap, which creates lift_reports and lets the Worker's role write it`
            : `could not read the event log or write lift_reports in Directus (${reason}); try again`,
        },
      },
      502,
    );
  }
});
