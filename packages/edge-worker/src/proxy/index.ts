/**
 * Edge-proxy mode: the Worker sits in front of the site (ORIGIN_URL). It serves Attune
 * first-party under `/attune/*` (the SDK script, decide with the `attune_aid` cookie, and
 * aliases of the `/v1/*` API, so ad-blockers see only the site's own origin), and proxies
 * everything else to the origin. HTML documents of consented people get their
 * `data-attune-slot` elements filled while streaming (see ../rewrite), and a HEAD of such
 * a page gets the GET's caching headers; everything else — other content types, other
 * methods, non-200 answers — passes through untouched, but for a redirect to the origin's
 * own host and a cookie for it, which are moved to the shop's. A page is marked as varying on
 * Cookie for everyone: once consent writes one, the same URL may be personalized.
 */
import type { ConsentState, EventMessage } from '@attune/shared-schema';
import { applyGpc, consentInForce, LIMITS, readJsonText, type SlotDecision } from '@attune/shared-schema';
import type { Context, Hono } from 'hono';
import type { AppEnv } from '../app.ts';
import { type ConsentConfigRead, claimInForce, readConsentConfig } from '../config/consent-config.ts';
import { cachedCovisits, readCovisits } from '../decide/covisitation.ts';
import {
  catalogWithinBudget,
  decideSlots,
  type PreparedDecision,
  prepareDecision,
  productFromPath,
} from '../decide/decide.ts';
import { answerDecide, decisionBudgetMs, recordServed } from '../decide/routes.ts';
import type { CovisitCounts } from '../decide/scorer.ts';
import { contentCoding, utf8Text } from '../ingest/body.ts';
import { clientAddress, underIpLimit } from '../ingest/rate-limit.ts';
import { waitUntil } from '../ingest/routes.ts';
import { log, logOnce } from '../observability/index.ts';
import { rewriteSlots, type SlotRequest } from '../rewrite/index.ts';
import { renderDecision } from '../rewrite/render.ts';
import { getSiteByWriteKey, isOriginAllowed, listSites, type Site } from '../sites/index.ts';
import {
  allowsStoredId,
  anonymousIdCookie,
  anonymousIdFrom,
  consentCookie,
  consentFrom,
  endedIdsCookie,
  expiredAnonymousIdCookie,
  holdsEndedId,
  isEndedId,
  originEndsId,
  parseCookies,
  publicSetCookie,
  visitorOfBatch,
} from './cookies.ts';
import { serveSdk } from './sdk.ts';

/** Paths that belong to Attune and are never proxied to the origin. */
export function isAttunePath(pathname: string): boolean {
  return (
    pathname === '/healthz' ||
    pathname === '/v1' ||
    pathname.startsWith('/v1/') ||
    pathname === '/attune' ||
    pathname.startsWith('/attune/')
  );
}

/** The origin the Worker fronts, or undefined when edge-proxy mode is off. */
export function originUrl(env: Env): URL | undefined {
  const raw = String(env.ORIGIN_URL ?? '').trim();
  if (raw === '') return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    // Edge-proxy mode is then off and every page is a 404: the operator must learn why.
    reportOriginMistake(
      raw,
      'ORIGIN_URL is not an http(s) URL; edge-proxy mode is off until it is one, such as https://shop.example.com',
    );
    return undefined;
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    // Requests keep their own path (see originRequestUrl): a base path here would be
    // silently dropped, so the shop must say it is so.
    reportOriginMistake(
      raw,
      `ORIGIN_URL's path, query and fragment are ignored: requests go to ${url.origin} with their own path; serve the site from the origin's root`,
    );
  }
  return url;
}

function reportOriginMistake(raw: string, problem: string): void {
  logOnce(`ORIGIN_URL:${raw}`, 'error', 'config.origin_url', { problem });
}

/** The site a first-party request belongs to: by write key, by its own origin, or the only site. */
export async function firstPartySite(
  env: Env,
  url: URL,
  writeKey: string | undefined,
): Promise<Site | undefined> {
  if (writeKey !== undefined && writeKey !== '') return getSiteByWriteKey(env, writeKey);
  const sites = await listSites(env);
  return sites.find((s) => isOriginAllowed(s, url.origin)) ?? (sites.length === 1 ? sites[0] : undefined);
}

/** Mounts the first-party routes and the origin catch-all; call it last, after every other route. */
export function mountEdgeProxy(app: Hono<AppEnv>, options: EdgeProxyOptions = {}): void {
  app.get('/attune/attune.js', serveSdk);
  app.get('/attune/decide', firstPartyDecide);
  app.get('/attune/v1/decide', firstPartyDecide);
  // Aliases: /attune/collect → /v1/collect, /attune/v1/config → /v1/config, …
  app.all('/attune/*', (c) => {
    const url = new URL(c.req.url);
    const rest = url.pathname.slice('/attune/'.length);
    if (rest === '' || rest.includes('..')) return c.notFound();
    url.pathname = rest.startsWith('v1/') ? `/${rest}` : `/v1/${rest}`;
    if (url.pathname === '/v1/collect' && c.req.method === 'POST') return firstPartyCollect(c, app, url);
    return app.fetch(new Request(url, c.req.raw), c.env, c.executionCtx);
  });
  app.all('*', proxyToOrigin(options));
}

/**
 * `/attune/collect`: the ingest answers as on `/v1/collect`; when it accepted the batch,
 * the answer also stores the browser's choice and anonymous id as first-party cookies, which
 * the next page load through the proxy is personalized by. Both follow what the edge granted,
 * not what the batch claims: the id is stored only when the edge took some of the batch's
 * events and the choice, as the site's categories stand (GPC applied), allows a stored id;
 * otherwise it is expired. Before, the raw claim decided: a tab opened before a policy change
 * (whose events the edge drops), a claim of a disabled category, or the late events of an
 * erased browser (dropped by its tombstone) stored the id for 400 days.
 */
async function firstPartyCollect(c: Context<AppEnv>, app: Hono<AppEnv>, url: URL): Promise<Response> {
  const declared = Number(c.req.header('content-length') ?? Number.NaN);
  const origin = c.req.header('origin');
  // Bodies of unknown or excessive length, compressed ones (a server library's: read as text
  // here, a gzip body was corrupted, and every such batch refused), and other origins' calls
  // (their cookies would not be this site's) go to the ingest untouched: it reads within its
  // limit, decodes, and says what is wrong. The SDK sends plain text, which gets the cookies.
  if (
    !(declared <= LIMITS.maxBatchBytes) ||
    contentCoding(c.req.raw.headers) !== 'identity' ||
    (origin !== undefined && origin !== url.origin)
  )
    return app.fetch(new Request(url, c.req.raw), c.env, c.executionCtx);
  // A declared length within the limit bounds the read.
  const text = await c.req.raw
    .arrayBuffer()
    .then(utf8Text)
    .catch(() => '');
  const answer = await app.fetch(
    new Request(url, { method: 'POST', headers: c.req.raw.headers, body: text }),
    c.env,
    c.executionCtx,
  );
  if (answer.status !== 200 && answer.status !== 207) return answer;
  const parsed = readJsonText(text);
  // A partly refused batch (207): the cookies follow what was taken, not a refused event's
  // claims (another id, a choice under an old policy version).
  const refused = answer.status === 207 ? await refusedIndexes(answer) : new Set<number>();
  const visitor = parsed.ok ? visitorOfBatch(parsed.json, refused) : undefined;
  if (!visitor) return answer;
  // Events of an id the site ended (sent late from the SDK's outbox, or by a tab that had not
  // followed the sign-out yet) were the person's and are taken; but this browser is no longer
  // theirs: no cookie, or the edge would personalize it for the person who left.
  if (isEndedId(visitor.anonymousId, parseCookies(c.req.header('cookie') ?? null))) return answer;
  const writeKey = parsed.ok ? (parsed.json as { writeKey?: unknown }).writeKey : undefined;
  const site = typeof writeKey === 'string' ? await getSiteByWriteKey(c.env, writeKey) : undefined;
  if (!site) return answer;
  // The choice as the ingest judged it (claimInForce), GPC applied.
  const inForce = claimInForce(visitor.consent, await readConsentConfig(c.env, site.id));
  const granted = inForce && applyGpc(inForce, c.req.header('sec-gpc') === '1');
  const secure = url.protocol === 'https:';
  // Read from a copy before the answer's body moves to the response.
  const storesId = granted !== undefined && allowsStoredId(granted) && (await tookEvents(answer));
  const response = new Response(answer.body, answer);
  // A choice under a policy since replaced is no choice now (the SDK asks again): the cookie
  // keeps what it held, which grants nothing under the new policy either.
  if (granted) response.headers.append('set-cookie', consentCookie(granted, secure));
  response.headers.append(
    'set-cookie',
    storesId ? anonymousIdCookie(visitor.anonymousId, secure) : expiredAnonymousIdCookie(secure),
  );
  return response;
}

/** Whether the ingest's answer says it took events (accepted now, or before: a retry's duplicates). */
async function tookEvents(answer: Response): Promise<boolean> {
  const body = (await answer
    .clone()
    .json()
    .catch(() => ({}))) as { accepted?: unknown; duplicates?: unknown };
  const taken = (n: unknown) => typeof n === 'number' && n > 0;
  return taken(body.accepted) || taken(body.duplicates);
}

/** The indexes of the events a 207 answer names as refused (its body read from a copy). */
async function refusedIndexes(answer: Response): Promise<Set<number>> {
  const body = (await answer
    .clone()
    .json()
    .catch(() => ({}))) as { rejected?: unknown };
  const rejected = Array.isArray(body.rejected) ? body.rejected : [];
  return new Set(
    rejected
      .map((r: unknown) =>
        typeof r === 'object' && r !== null ? (r as { index?: unknown }).index : undefined,
      )
      .filter((i): i is number => typeof i === 'number'),
  );
}

async function firstPartyDecide(c: Context<AppEnv>) {
  const url = new URL(c.req.url);
  const origin = c.req.header('origin');
  const site = await firstPartySite(c.env, url, c.req.query('writeKey'));
  if (!site)
    return c.json({ error: { code: 'unknown_site', message: 'no site for this host: pass writeKey' } }, 401, {
      'cache-control': 'no-store',
    });
  // First-party only: its answer carries no CORS headers (and a cross-origin request no
  // attune_aid cookie), so another origin, even one the site allows, could not read it, while
  // the decision would still be counted as served (the lift report's exposure).
  if (origin !== undefined && origin !== url.origin)
    return c.json(
      {
        error: {
          code: 'origin_not_allowed',
          message:
            "/attune/decide answers the site's own pages only; from another origin the site allows, call /v1/decide",
        },
      },
      403,
      { 'cache-control': 'no-store' },
    );
  const aid = anonymousIdFrom(parseCookies(c.req.header('cookie') ?? null));
  return answerDecide(c, site, aid !== undefined ? { fallbackAnonymousId: aid } : {});
}

/** How long a read of a slot's "viewed next" counts for the next page may take, after the response. */
const COVISIT_WARM_MS = 1000;

/** Request headers not forwarded to the origin (hop-by-hop, or the Worker's own). */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
];

/** A header name: an HTTP token (RFC 9110, 5.1 and 5.6.2). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** A client's own claims of the address and port it came from, never passed to the origin. */
const CLIENT_CLAIMS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-port', 'x-client-ip'];

/**
 * A browser's navigation to a page, the only request a decision is made for: `Sec-Fetch-Dest:
 * document`, or (without fetch metadata) an `Accept` naming HTML. An Accept that merely takes
 * any type is not enough: every image, script and stylesheet of a page sends one, and each
 * would start a decision's reads (site, catalog, profile, co-visits) only to throw them
 * away, and lose `zstd` from its Accept-Encoding.
 */
function isDocumentRequest(headers: Headers): boolean {
  if (headers.get('sec-fetch-dest') === 'document') return true;
  return /text\/html/i.test(headers.get('accept') ?? '');
}

function isHtml(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').toLowerCase().includes('text/html');
}

/**
 * The content codings the runtime hands us decoded. A body in any other coding would be
 * rewritten as if its compressed bytes were HTML: it passes through as it is, and the
 * origin is offered these codings only.
 */
const DECODED_CODINGS = new Set(['identity', 'gzip', 'br']);

function isDecoded(res: Response): boolean {
  return DECODED_CODINGS.has(contentCoding(res.headers));
}

/** Of an Accept-Encoding value, the codings (with their weights) the runtime decodes. */
function decodedCodings(accepted: string): string[] {
  return accepted
    .split(',')
    .map((part) => part.trim())
    .filter((part) => DECODED_CODINGS.has((part.split(';')[0] ?? '').trim().toLowerCase()));
}

/** Reads what one page's decision needs; the proxy starts it before the origin is asked. */
export type DecisionPreparer = (
  env: Env,
  site: Site,
  anonymousId: string,
  url: URL,
  browserConsent: ReturnType<typeof consentFrom>,
  budgetMs: number,
) => Promise<PreparedDecision | null>;

export interface EdgeProxyOptions {
  /** Replaces the decision's reads (tests hold a decision back to prove headers never wait for it). */
  prepare?: DecisionPreparer;
}

/**
 * What the last settled decision of an anonymous id on a site said about storing its cookie,
 * kept per isolate: response headers never wait for a decision, so a refresh or an expiry the
 * decision calls for is written on the person's next page when it was not ready in time.
 * Keyed by site and id: the same id on another site is another person, whose consent says
 * nothing about this one's cookie.
 */
const cookieVerdicts = new Map<string, { store: boolean; at: number }>();
const COOKIE_VERDICT_TTL_MS = 10 * 60_000;
const COOKIE_VERDICT_MAX = 10_000;

/** The key of an id's verdict on a site. */
function verdictKey(siteId: string, anonymousId: string): string {
  return `${siteId}\u0000${anonymousId}`;
}

function rememberCookieVerdict(key: string, store: boolean): void {
  cookieVerdicts.delete(key);
  if (cookieVerdicts.size >= COOKIE_VERDICT_MAX) {
    const oldest = cookieVerdicts.keys().next();
    if (!oldest.done) cookieVerdicts.delete(oldest.value);
  }
  cookieVerdicts.set(key, { store, at: Date.now() });
}

/**
 * Forgets a remembered grant of an id whose settled decision found no recorded consent (the
 * person was erased, or their choice was made under an earlier policy version): such a
 * grant must not refresh the cookie on a later page. A remembered expiry stays.
 */
function forgetCookieGrant(key: string): void {
  if (cookieVerdicts.get(key)?.store === true) cookieVerdicts.delete(key);
}

function cookieVerdictOf(key: string): boolean | undefined {
  const verdict = cookieVerdicts.get(key);
  if (!verdict) return undefined;
  if (Date.now() - verdict.at > COOKIE_VERDICT_TTL_MS) {
    cookieVerdicts.delete(key);
    return undefined;
  }
  return verdict.store;
}

/** Whether a settled decision allows storing the id cookie; undefined when it says nothing (no recorded consent). */
function storageVerdict(
  ready: PreparedDecision | null,
  browserConsent: ReturnType<typeof consentFrom>,
): boolean | undefined {
  const consent = ready?.ctx.consent;
  if (!consent) return undefined;
  return allowsStoredId(consent) && (browserConsent === undefined || allowsStoredId(browserConsent));
}

/** Whether a fresh visitor's consent cookie lets the edge mint an id, under the site's configuration. */
function mayMint(browserConsent: ConsentState, policy: ConsentConfigRead | undefined): boolean {
  if (!policy?.ok) return false;
  const inForce = consentInForce(browserConsent, policy.config);
  return inForce !== undefined && allowsStoredId(inForce);
}

/** `work`'s value, or undefined once `deadline` (epoch ms) passes (or it fails); the timer is cleared either way. */
async function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race<T | undefined>([
    work.catch(() => undefined),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves on a later macrotask: after the I/O issued in this one (the origin fetch) is on its way. */
function afterThisTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const NOT_SETTLED = Symbol('not settled');

/** The value of a promise if it has already settled, without waiting for any I/O. */
async function ifSettled<T>(work: Promise<T>): Promise<T | typeof NOT_SETTLED> {
  // A resolved promise settles the race only after `work` had its chance in the same microtask turn.
  const later = Promise.resolve().then((): typeof NOT_SETTLED => NOT_SETTLED);
  return Promise.race<T | typeof NOT_SETTLED>([work, later]);
}

/**
 * The methods passed on to the origin: what pages, forms and a shop's own API use. Others
 * (TRACE, which an origin may echo with the browser's cookies; WebDAV's PROPFIND, …) are
 * answered 405 here rather than forwarded with the visitor's cookies.
 */
const PROXIED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function proxyToOrigin(options: EdgeProxyOptions) {
  const prepareFor = options.prepare ?? prepare;
  return async (c: Context<AppEnv>): Promise<Response> => {
    const origin = originUrl(c.env);
    const url = new URL(c.req.url);
    if (!origin || isAttunePath(url.pathname)) return c.notFound();
    if (!PROXIED_METHODS.includes(c.req.method))
      return c.text(`${c.req.method} is not passed on to the site.`, 405, {
        allow: PROXIED_METHODS.join(', '),
        'cache-control': 'no-store',
      });
    const deadline = Date.now() + decisionBudgetMs(c.env);
    const method = c.req.method;
    const cookies = parseCookies(c.req.header('cookie') ?? null);
    const aid = anonymousIdFrom(cookies);
    const browserConsent = consentFrom(cookies);
    const document = method === 'GET' && isDocumentRequest(c.req.raw.headers);
    // HEAD of a page is answered with the headers its GET would have (RFC 9110, 9.3.2): asked
    // of the origin as the GET is, and marked as the GET is, with no decision made for it.
    const pageHead = method === 'HEAD' && isDocumentRequest(c.req.raw.headers);

    // The site and the decision's reads (profile, catalog, co-visits) run while the origin
    // is answering; nothing below waits for the decision before the headers go out.
    const siteLookup = document ? firstPartySite(c.env, url, undefined) : Promise.resolve(undefined);
    // A page's decision reads the profile of whatever id the cookie names: limited per IP as
    // /v1/decide is (the same bucket). Over the limit the page is the origin's, undecided.
    // The key of the id's cookie verdict on the page's site, known before any decision is.
    let verdictFor: string | undefined;
    const prepared =
      aid === undefined
        ? undefined
        : siteLookup.then(async (site) => {
            if (!site) return null;
            verdictFor = verdictKey(site.id, aid);
            const limited = await underIpLimit(
              c.env,
              site,
              clientAddress(c.req.raw.headers),
              deadline - Date.now(),
              () => prepareFor(c.env, site, aid, url, browserConsent, deadline - Date.now()),
            );
            return limited.allowed ? limited.value : null;
          });
    // A fresh visitor whose consent cookie grants a stored id gets one minted only if that
    // choice was made under the site's policy in force: its configuration is read meanwhile.
    const policyLookup =
      aid === undefined && browserConsent !== undefined && allowsStoredId(browserConsent)
        ? siteLookup.then((site) => (site ? readConsentConfig(c.env, site.id) : undefined))
        : undefined;
    // Once the decision is known, slots are filled synchronously: a slot the page reaches
    // after the deadline (a slow origin) still gets a decision that was ready long before.
    let known: { ready: PreparedDecision | null } | undefined;
    // Remember the cookie verdict whenever the decision settles (even after the response went out).
    const settled = prepared?.then(
      (ready) => {
        known = { ready };
        const verdict = storageVerdict(ready, browserConsent);
        if (verdictFor !== undefined && verdict !== undefined) rememberCookieVerdict(verdictFor, verdict);
        // A decision made without a recorded consent (an erased profile reads as none) ends
        // what an earlier page's decision granted; one not made at all (null) says nothing.
        // A profile read that missed its budget also reads as none: that page then only
        // skips a refresh.
        else if (verdictFor !== undefined && ready !== null) forgetCookieGrant(verdictFor);
        return ready;
      },
      () => {
        known = { ready: null };
        return null;
      },
    );

    const headers = new Headers(c.req.raw.headers);
    // The headers Connection names are hop-by-hop too (RFC 9110, 7.6.1). A token that is no
    // header name (a broken client's `x trace`, `"`) names no header to drop: deleting it threw,
    // and the page was a 500.
    for (const named of (headers.get('connection') ?? '').split(',')) {
      const name = named.trim().toLowerCase();
      if (HEADER_NAME.test(name) && !name.startsWith('cf-')) headers.delete(name);
    }
    for (const h of HOP_BY_HOP) headers.delete(h);
    // A WebSocket handshake is the one upgrade passed on: the runtime opens the socket to the
    // origin when a fetch carries `Upgrade: websocket`, and its 101 answer carries the socket
    // back to the browser. Stripped as hop-by-hop, the origin refused the handshake, and a
    // shop's live chat, stock ticker or dev reload behind the Worker never connected.
    if (method === 'GET' && isWebSocketUpgrade(c.req.header('upgrade'))) headers.set('upgrade', 'websocket');
    // What a client says about where a request came from is not evidence: an origin that
    // trusts these for the client's address (its own rate limits, geo rules, audit logs)
    // would be fooled. It is told the address the edge saw, as a proxy in front of it does.
    for (const h of CLIENT_CLAIMS) headers.delete(h);
    const client = c.req.header('cf-connecting-ip');
    if (client !== undefined) headers.set('x-forwarded-for', client);
    headers.set('x-forwarded-host', url.host);
    headers.set('x-forwarded-proto', url.protocol.replace(':', ''));
    // A page for a person may be personalized: the origin must send it whole. Its 304 would
    // let the browser show the copy it kept (one cached before consent, or a stale one); its
    // 206 would be a range of the origin's bytes, not of the page this person is served
    // (spliced onto what the browser holds, a broken page). The whole page is answered 200,
    // as HTTP lets any server answer a Range request.
    if (aid !== undefined && (document || pageHead)) {
      for (const h of ['if-none-match', 'if-modified-since', 'range', 'if-range']) headers.delete(h);
    }
    // A page may be rewritten only in a coding the runtime decodes: of the codings the
    // browser accepts, only those are offered to the origin (none left: identity).
    const accepted = headers.get('accept-encoding');
    if ((document || pageHead) && accepted !== null) {
      const decodable = decodedCodings(accepted);
      if (decodable.length > 0) headers.set('accept-encoding', decodable.join(', '));
      else headers.delete('accept-encoding');
    }
    const upload = method === 'GET' || method === 'HEAD' ? undefined : forwardedBody(c.req.raw);
    let upstream: Response;
    try {
      upstream = await fetch(originRequestUrl(origin, url), {
        method,
        headers,
        body: upload?.body ?? null,
        redirect: 'manual',
      });
    } catch (error) {
      // The client's body broke off, or was not as long as it said: the client's doing, not an outage.
      if (upload?.clientFailed())
        return c.text(
          `The request body broke off, or was not as long as its Content-Length (${c.req.header('content-length') ?? 'none'}) said; send the request again, whole.`,
          400,
          { 'cache-control': 'no-store' },
        );
      // The error's name only: its message may quote the URL, whose path and query are the visitor's.
      log('warn', 'origin unreachable', { error: error instanceof Error ? error.name : 'unknown' });
      return c.text('The site is temporarily unreachable. Please try again shortly.', 502, {
        'cache-control': 'no-store',
        'retry-after': '5',
      });
    }
    if (upstream.status === 101) return upstream;
    upstream = withPublicCookies(withPublicLocation(upstream, origin, url), origin, url);
    const secure = url.protocol === 'https:';
    // The site ended this browser's id (its sign-out or erasure expired `attune_aid`): the
    // browser keeps that in `attune_ended`, so no late collect answer writes the id back. The
    // answer is the origin's: not personalized, and no refresh of the id it just expired.
    if (aid !== undefined && originEndsId(upstream.headers.getSetCookie(), aid)) {
      const ended = new Response(upstream.body, upstream);
      ended.headers.append('set-cookie', endedIdsCookie(aid, cookies, secure));
      return ended;
    }
    if (upstream.status !== 200 || !isHtml(upstream) || !isDecoded(upstream)) return upstream;
    // Before, a person's HEAD was the origin's: its 304, `public` caching, CDN headers and the
    // validators of a page this person's GET never gets (a tool or cache checking the page
    // was told it could be shared).
    if (pageHead && aid !== undefined) {
      const head = new Response(null, upstream);
      markPrivate(head.headers, true);
      return head;
    }
    if (pageHead) {
      const head = new Response(upstream.body, upstream);
      varyOnCookie(head.headers);
      return head;
    }
    if (!document) return upstream;
    // Normally settled long before the origin answers (sites are in isolate memory).
    const site = await siteLookup.catch(() => undefined);
    if (!site) return upstream;

    const response = new Response(upstream.body, upstream);
    // The page is the origin's for a visitor without a person cookie, and may be personalized
    // once consent writes one: a copy kept now (the origin's `public, max-age`, in the browser
    // or a cache in front) must not be shown for the same URL then.
    varyOnCookie(response.headers);
    if (!settled || aid === undefined) {
      // A fresh visitor: mint the first-party id only if their consent cookie allows storing
      // one under the site's policy in force (a choice made under an earlier version is asked
      // again; a category since disabled grants nothing). A configuration not read by the
      // deadline, or unavailable, mints nothing: the first collect writes the id anyway.
      const policy = policyLookup ? await beforeDeadline(policyLookup, deadline) : undefined;
      if (browserConsent && mayMint(browserConsent, policy)) {
        response.headers.append('set-cookie', anonymousIdCookie(crypto.randomUUID(), secure));
        markPrivate(response.headers, false);
      } else if (holdsEndedId(cookies)) {
        // An answer already on its way at sign-out wrote the ended id back: it goes.
        response.headers.append('set-cookie', expiredAnonymousIdCookie(secure));
        markPrivate(response.headers, false);
      }
      return response;
    }

    // A person cookie: the page may be personal, whatever the decision turns out to be.
    markPrivate(response.headers, true);
    // The id cookie is refreshed (or expired, consent withdrawn) by the decision if it is
    // already known, else by the last verdict this isolate saw for the id — never by waiting.
    // A settled decision that found no recorded consent has already dropped a remembered
    // grant (above): only a remembered expiry can then apply.
    const now = await ifSettled(settled);
    const verdict =
      now === NOT_SETTLED
        ? cookieVerdictOf(verdictKey(site.id, aid))
        : (storageVerdict(now, browserConsent) ?? cookieVerdictOf(verdictKey(site.id, aid)));
    if (verdict !== undefined)
      response.headers.append(
        'set-cookie',
        verdict ? anonymousIdCookie(aid, secure) : expiredAnonymousIdCookie(secure),
      );

    const served: EventMessage[] = [];
    const decideFill = ({ catalog, ctx }: PreparedDecision, request: SlotRequest) => {
      const productId = request.productId ?? ctx.productId;
      // A decision is shown only if it renders: with nothing to show (no products to
      // recommend) the origin's default stays, and no decision was served. A held-out person
      // is logged on the slots a treated person would have seen filled (decideSlots). Each
      // decision is rendered once, for that test and for the page alike.
      const renders = new Map<SlotDecision, string | null>();
      const rendered = (d: SlotDecision) => {
        if (!renders.has(d)) renders.set(d, renderDecision(d));
        return renders.get(d) ?? null;
      };
      const outcome = decideSlots(
        catalog,
        {
          ...ctx,
          slots: [request.slot],
          ...(productId ? { productId } : {}),
          gpc: c.req.header('sec-gpc') === '1',
        },
        { shown: (d) => rendered(d) !== null },
      );
      served.push(...outcome.served);
      // Held-out people keep the origin's default content: that is the control experience.
      if (ctx.holdout) return null;
      const decision = outcome.response.decisions[request.slot];
      const html = decision ? rendered(decision) : null;
      if (!decision || html === null) return null;
      return { html, variant: decision.variant, decisionId: decision.decisionId };
    };
    const fill = (ready: PreparedDecision | null, request: SlotRequest) => {
      if (!ready?.ctx.personalization) return null;
      const { catalog, ctx } = ready;
      const productId = request.productId ?? ctx.productId;
      // A slot naming its product (data-attune-product, on a page whose path names none) is
      // a source of "viewed next" as /v1/decide's productId is: its counts are read now,
      // within the page's deadline, only for a product of the catalog (any page can name any id).
      if (
        productId !== undefined &&
        !ctx.holdout &&
        !ctx.covisits.has(productId) &&
        catalog.indexById.has(productId)
      ) {
        const withCounts = (counts: CovisitCounts): PreparedDecision => ({
          catalog,
          ctx: { ...ctx, covisits: new Map([...ctx.covisits, ...counts]) },
        });
        const cached = cachedCovisits(site.id, productId);
        if (cached !== undefined) return decideFill(withCounts(new Map([[productId, cached]])), request);
        const left = deadline - Date.now();
        if (left > 0)
          // Decided only while the page may still wait: a fill the deadline gave up on must not
          // count as served (the slot keeps its default).
          return readCovisits(c.env, site.id, [productId], left).then((counts) =>
            Date.now() < deadline ? decideFill(withCounts(counts), request) : null,
          );
        // Past the deadline (a slow origin) the slot is decided at once without them, as
        // before; the read fills this isolate's cache for the product's next page.
        waitUntil(c, readCovisits(c.env, site.id, [productId], COVISIT_WARM_MS));
      }
      return decideFill(ready, request);
    };
    return rewriteSlots(
      response,
      // Only the slots wait for the decision (bounded by the deadline in rewriteSlots).
      (request: SlotRequest) =>
        // A decision that comes after the deadline fills nothing (the slot kept its default, see
        // fillWithin), so it must not be decided here either: its `decision.served` would log an
        // exposure nobody saw.
        known
          ? fill(known.ready, request)
          : settled.then((ready) => (Date.now() < deadline ? fill(ready, request) : null)),
      // Until the decision is known, the page is held just before the first slot (not in
      // the rewriter), so everything above it reaches the browser meanwhile; a decision
      // already known needs no hold (and the page no extra stream stage).
      {
        deadline,
        ...(now === NOT_SETTLED ? { decided: settled } : {}),
        onEnd: () => recordServed(c, served),
      },
    );
  };
}

const prepare: DecisionPreparer = async (env, site, anonymousId, url, browserConsent, budgetMs) => {
  try {
    // The reads start one macrotask after the origin fetch was issued: under workerd a
    // Durable Object call made in the same turn is served first, and the origin request
    // left ≈ 4 ms later per call (measured; see README, "Benchmarks"). The origin is the
    // long pole, and the reads still have its whole think time to finish in.
    const asked = Date.now();
    await afterThisTurn();
    // The catalog is in isolate memory almost always; it names the product on screen. One
    // still loading (a cold isolate, or just after the webhook invalidated it) is waited for
    // only within the budget, then the last one held stands in, as on /v1/decide.
    const catalog = await catalogWithinBudget(env, site.id, budgetMs);
    const productId = productFromPath(url.pathname, catalog);
    // The reads' budget still ends at the request's deadline.
    const left = budgetMs - (Date.now() - asked);
    return await prepareDecision(env, {
      siteId: site.id,
      // The profile follows an anonymous id to the person it was merged into: one round trip.
      personKey: `anon:${anonymousId}`,
      anonymousId,
      slots: [],
      ...(productId !== undefined ? { productId } : {}),
      ...(browserConsent ? { browserConsent } : {}),
      budgetMs: left,
    });
  } catch (error) {
    console.warn(
      // No path: a page's path can name a person (/account/jane@example.com).
      JSON.stringify({ msg: 'decision unavailable', error: error instanceof Error ? error.name : 'unknown' }),
    );
    return null;
  }
};

/**
 * A request's body as it is passed on to the origin (with its Content-Length, when it
 * declares one), and whether the client's side of it failed: it broke off part-way (a client
 * gone), or was not as long as it declared. A fetch that fails then is the client's doing,
 * not an origin outage (before, it was logged and answered as the origin being unreachable).
 * Undefined for a request without a body.
 */
function forwardedBody(
  request: Request,
): { body: ReadableStream<Uint8Array>; clientFailed: () => boolean } | undefined {
  const source = request.body;
  if (source === null) return undefined;
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  const length = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
  const { readable, writable } =
    length === undefined ? new IdentityTransformStream() : new FixedLengthStream(length);
  let failed = false;
  const pump = async () => {
    const reader = source.getReader();
    const writer = writable.getWriter();
    let sent = 0;
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        failed = true;
        await writer.abort(error);
        return;
      }
      if (chunk.done) {
        if (length !== undefined && sent !== length) {
          failed = true;
          await writer.abort(new RangeError('request body shorter than its Content-Length'));
        } else await writer.close();
        return;
      }
      sent += chunk.value.byteLength;
      if (length !== undefined && sent > length) {
        failed = true;
        await Promise.all([
          writer.abort(new RangeError('request body longer than its Content-Length')),
          reader.cancel(),
        ]);
        return;
      }
      try {
        await writer.write(chunk.value);
      } catch {
        // The origin stopped reading (it answered, or the fetch failed): nothing more to send.
        await reader.cancel();
        return;
      }
    }
  };
  // Settles once the body is sent, or given up; its failures are what `clientFailed` reports.
  pump().catch(() => undefined);
  return { body: readable, clientFailed: () => failed };
}

/** Whether an `Upgrade` request header asks for a WebSocket (the only upgrade a browser makes). */
function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return (upgrade ?? '').split(',').some((protocol) => protocol.trim().toLowerCase() === 'websocket');
}

/** A `Location` that names a scheme or starts `//` (or `/\`, which browsers read as `//`): not relative to the page. */
const ABSOLUTE_LOCATION = /^(?:[a-z][a-z0-9+.-]*:|[\\/]{2})/i;

/**
 * The origin's answer with a `Location` on the origin's own host moved to the host the
 * browser asked (as nginx's `proxy_redirect default` does). The origin sees its own host in
 * `Host`, and many build absolute redirects from it (nginx's slash redirect of a directory,
 * Django, PHP): passed on as they were, they sent the visitor off the shop's domain to the
 * origin itself, past the Worker, its personalization and its first-party cookies. Any
 * other `Location` — relative, or another site's — is passed on as it is.
 */
function withPublicLocation(upstream: Response, origin: URL, url: URL): Response {
  const location = upstream.headers.get('location');
  if (location === null || !ABSOLUTE_LOCATION.test(location.trim())) return upstream;
  let target: URL;
  try {
    target = new URL(location.trim(), origin);
  } catch {
    return upstream;
  }
  if (target.origin !== origin.origin) return upstream;
  const moved = new Response(upstream.body, upstream);
  moved.headers.set('location', `${url.origin}${target.pathname}${target.search}${target.hash}`);
  return moved;
}

/** The origin's answer with its cookies for the origin's own host moved to the browser's (see `publicSetCookie`). */
function withPublicCookies(upstream: Response, origin: URL, url: URL): Response {
  const lines = upstream.headers.getSetCookie();
  const moved = lines.map((line) => publicSetCookie(line, origin.hostname, url.hostname));
  if (moved.every((line, i) => line === lines[i])) return upstream;
  const answer = new Response(upstream.body, upstream);
  answer.headers.delete('set-cookie');
  for (const line of moved) answer.headers.append('set-cookie', line);
  return answer;
}

/**
 * The origin URL for a proxied request: the origin's scheme and host with the request's
 * path and query. Never `new URL(path, origin)`: a path starting `//` (or `/\`, which URL
 * parsing turns into `//`) is a protocol-relative URL there, and would make the Worker
 * fetch any host, with the shop's cookies, and serve its answer on the shop's domain.
 */
export function originRequestUrl(origin: URL, url: URL): URL {
  const target = new URL(origin.href);
  target.pathname = url.pathname;
  target.search = url.search;
  return target;
}

/**
 * Personal responses must not be stored by shared caches, including those that obey a
 * CDN's own header over Cache-Control (RFC 9213); a rewritten body also has a new length
 * and no validators (revalidating it against the origin's page would bring that back).
 */
function markPrivate(headers: Headers, rewritten: boolean): void {
  headers.set('cache-control', personalCacheControl(headers.get('cache-control')));
  for (const h of ['cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control'])
    headers.delete(h);
  varyOnCookie(headers);
  if (rewritten) {
    headers.delete('content-length');
    headers.delete('etag');
    headers.delete('last-modified');
  }
}

/** Names `Cookie` in a page's `Vary`, once (the origin may have named it, or `*`). */
function varyOnCookie(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === null || vary.trim() === '') headers.set('vary', 'Cookie');
  else if (!vary.split(',').some((name) => ['cookie', '*'].includes(name.trim().toLowerCase())))
    headers.set('vary', `${vary}, Cookie`);
}

/**
 * The Cache-Control of a personal page: `private, no-cache`, plus the origin's `no-store`
 * when it sent one. A page the origin would not let be stored (a signed-in name, a cart, a
 * checkout: Next's dynamic pages) must stay out of the disk cache and the back/forward
 * cache, or after sign-out the Back button shows the previous person's page.
 */
function personalCacheControl(origin: string | null): string {
  const noStore = (origin ?? '')
    .split(',')
    .some((directive) => (directive.split('=')[0] ?? '').trim().toLowerCase() === 'no-store');
  return noStore ? 'private, no-cache, no-store' : 'private, no-cache';
}
