/**
 * Edge-proxy mode: the Worker sits in front of the site (ORIGIN_URL). It serves Attune
 * first-party under `/attune/*` (the SDK script, decide with the `attune_aid` cookie, and
 * aliases of the `/v1/*` API, so ad-blockers see only the site's own origin), and proxies
 * everything else to the origin. HTML documents of consented people get their
 * `data-attune-slot` elements filled while streaming (see ../rewrite); everything else —
 * other content types, other methods, non-200 answers — passes through untouched.
 */
import type { EventMessage } from '@attune/shared-schema';
import { isGranted } from '@attune/shared-schema';
import type { Context, Hono } from 'hono';
import type { AppEnv } from '../app.ts';
import { getCatalog } from '../catalog/index.ts';
import {
  decideSlots,
  type PreparedDecision,
  prepareDecision,
  productFromPath,
  withinBudget,
} from '../decide/decide.ts';
import { answerDecide, decisionBudgetMs, recordServed } from '../decide/routes.ts';
import { rewriteSlots, type SlotRequest } from '../rewrite/index.ts';
import { renderDecision } from '../rewrite/render.ts';
import { getSiteByWriteKey, isOriginAllowed, listSites, type Site } from '../sites/index.ts';
import {
  anonymousIdCookie,
  anonymousIdFrom,
  consentFrom,
  expiredAnonymousIdCookie,
  parseCookies,
} from './cookies.ts';

/** Paths that belong to Attune and are never proxied to the origin. */
export function isAttunePath(pathname: string): boolean {
  return (
    pathname === '/healthz' ||
    pathname.startsWith('/v1/') ||
    pathname === '/attune' ||
    pathname.startsWith('/attune/')
  );
}

/** The origin the Worker fronts, or undefined when edge-proxy mode is off. */
export function originUrl(env: Env): URL | undefined {
  const raw = String(env.ORIGIN_URL ?? '').trim();
  if (raw === '') return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
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
export function mountEdgeProxy(app: Hono<AppEnv>): void {
  app.get('/attune/attune.js', serveSdk);
  app.get('/attune/decide', firstPartyDecide);
  app.get('/attune/v1/decide', firstPartyDecide);
  // Aliases: /attune/collect → /v1/collect, /attune/v1/config → /v1/config, …
  app.all('/attune/*', (c) => {
    const url = new URL(c.req.url);
    const rest = url.pathname.slice('/attune/'.length);
    if (rest === '' || rest.includes('..')) return c.notFound();
    url.pathname = rest.startsWith('v1/') ? `/${rest}` : `/v1/${rest}`;
    return app.fetch(new Request(url, c.req.raw), c.env, c.executionCtx);
  });
  app.all('*', proxyToOrigin);
}

async function serveSdk(c: Context<AppEnv>) {
  const res = await c.env.ASSETS.fetch(new URL('/attune/attune.js', c.req.url)).catch(() => undefined);
  if (!res?.ok)
    return c.text('// Attune SDK not built: run `pnpm build` (packages/browser-sdk/dist/attune.js)\n', 404, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'no-store',
    });
  const headers = new Headers(res.headers);
  headers.set('content-type', 'text/javascript; charset=utf-8');
  headers.set('cache-control', 'public, max-age=300');
  return new Response(res.body, { status: 200, headers });
}

async function firstPartyDecide(c: Context<AppEnv>) {
  const url = new URL(c.req.url);
  const origin = c.req.header('origin');
  const site = await firstPartySite(c.env, url, c.req.query('writeKey'));
  if (!site)
    return c.json({ error: { code: 'unknown_site', message: 'no site for this host: pass writeKey' } }, 401, {
      'cache-control': 'no-store',
    });
  if (origin !== undefined && origin !== url.origin && !isOriginAllowed(site, origin))
    return c.json(
      { error: { code: 'origin_not_allowed', message: 'origin not allowed for this site' } },
      403,
    );
  const aid = anonymousIdFrom(parseCookies(c.req.header('cookie') ?? null));
  return answerDecide(c, site, aid !== undefined ? { fallbackAnonymousId: aid } : {});
}

/** Request headers not forwarded to the origin (hop-by-hop, or the Worker's own). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host'];

function isHtml(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').toLowerCase().includes('text/html');
}

async function proxyToOrigin(c: Context<AppEnv>): Promise<Response> {
  const origin = originUrl(c.env);
  const url = new URL(c.req.url);
  if (!origin || isAttunePath(url.pathname)) return c.notFound();
  const started = Date.now();
  const deadline = started + decisionBudgetMs(c.env);
  const method = c.req.method;
  const cookies = parseCookies(c.req.header('cookie') ?? null);
  const aid = anonymousIdFrom(cookies);
  const browserConsent = consentFrom(cookies);
  const document = method === 'GET' && (c.req.header('accept') ?? '*/*').match(/text\/html|\*\/\*/) !== null;

  // The decision's I/O (profile, catalog, co-visits) runs while the origin is answering.
  let prepared: Promise<PreparedDecision | null> | undefined;
  let site: Site | undefined;
  if (document) {
    site = await firstPartySite(c.env, url, undefined);
    if (site && aid !== undefined)
      prepared = prepare(c.env, site, aid, url, browserConsent, deadline - Date.now());
  }

  const headers = new Headers(c.req.raw.headers);
  for (const h of HOP_BY_HOP) headers.delete(h);
  headers.set('x-forwarded-host', url.host);
  headers.set('x-forwarded-proto', url.protocol.replace(':', ''));
  let upstream: Response;
  try {
    upstream = await fetch(new URL(url.pathname + url.search, origin), {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? null : c.req.raw.body,
      redirect: 'manual',
    });
  } catch (error) {
    console.warn(JSON.stringify({ msg: 'origin unreachable', error: String(error) }));
    return c.text('The site is temporarily unreachable. Please try again shortly.', 502, {
      'cache-control': 'no-store',
      'retry-after': '5',
    });
  }
  if (!document || upstream.status !== 200 || !isHtml(upstream) || !site) return upstream;

  const secure = url.protocol === 'https:';
  const response = new Response(upstream.body, upstream);
  if (!prepared) {
    // A fresh visitor: mint the first-party id only if their consent cookie allows storing one.
    if (
      browserConsent &&
      (isGranted(browserConsent, 'analytics') || isGranted(browserConsent, 'personalization'))
    ) {
      response.headers.append('set-cookie', anonymousIdCookie(crypto.randomUUID(), secure));
      markPrivate(response.headers, false);
    }
    return response;
  }

  // Headers wait for the decision at most a fifth of the budget, so time to first byte stays
  // the origin's; the slots themselves wait for it until the deadline while the page streams.
  const headerWait = Math.min(deadline - Date.now(), decisionBudgetMs(c.env) * HEADER_WAIT_SHARE);
  const early = await withinBudget<PreparedDecision | null | typeof PENDING>(prepared, headerWait, PENDING);
  if (early !== PENDING && early !== null) {
    const consent = early.ctx.consent;
    if (consent) {
      const storage =
        (isGranted(consent, 'analytics') || isGranted(consent, 'personalization')) &&
        (browserConsent === undefined ||
          isGranted(browserConsent, 'analytics') ||
          isGranted(browserConsent, 'personalization'));
      response.headers.append(
        'set-cookie',
        storage ? anonymousIdCookie(aid ?? '', secure) : expiredAnonymousIdCookie(secure),
      );
    }
    if (!early.ctx.personalization) {
      // Nothing personal in the page: the origin's caching stays, unless a cookie was written.
      if (consent) markPrivate(response.headers, false);
      return response;
    }
  } else if (early === null) {
    return response; // the decision failed: the origin's page, untouched
  }

  markPrivate(response.headers, true);
  const served: EventMessage[] = [];
  return rewriteSlots(
    response,
    async (request: SlotRequest) => {
      const ready = await prepared;
      if (!ready?.ctx.personalization) return null;
      const { catalog, ctx } = ready;
      const productId = request.productId ?? ctx.productId;
      const outcome = decideSlots(catalog, {
        ...ctx,
        slots: [request.slot],
        ...(productId ? { productId } : {}),
      });
      served.push(...outcome.served);
      const decision = outcome.response.decisions[request.slot];
      // Held-out people keep the origin's default content: that is the control experience.
      if (!decision || decision.holdout) return null;
      return { html: renderDecision(decision), variant: decision.variant, decisionId: decision.decisionId };
    },
    { deadline, onEnd: () => recordServed(c, served) },
  );
}

/** The share of the decision budget the response headers may wait (for the cookie decision). */
const HEADER_WAIT_SHARE = 0.2;
const PENDING = Symbol('pending');

async function prepare(
  env: Env,
  site: Site,
  anonymousId: string,
  url: URL,
  browserConsent: ReturnType<typeof consentFrom>,
  budgetMs: number,
): Promise<PreparedDecision | null> {
  try {
    // The catalog is in isolate memory almost always; it names the product on screen.
    const catalog = await getCatalog(env);
    const productId = productFromPath(url.pathname, catalog);
    return await prepareDecision(env, {
      siteId: site.id,
      // The profile follows an anonymous id to the person it was merged into: one round trip.
      personKey: `anon:${anonymousId}`,
      anonymousId,
      slots: [],
      ...(productId !== undefined ? { productId } : {}),
      ...(browserConsent ? { browserConsent } : {}),
      budgetMs,
    });
  } catch (error) {
    console.warn(
      JSON.stringify({ msg: 'decision unavailable', path: url.pathname.slice(0, 100), error: String(error) }),
    );
    return null;
  }
}

/** Personal responses must not be stored by shared caches; a rewritten body also has a new length and no ETag. */
function markPrivate(headers: Headers, rewritten: boolean): void {
  headers.set('cache-control', 'private, no-cache');
  headers.append('vary', 'Cookie');
  if (rewritten) {
    headers.delete('content-length');
    headers.delete('etag');
  }
}
