/**
 * CORS for the browser-facing API (`POST /v1/collect`, `GET /v1/config`, `GET /v1/decide`):
 * every answer — errors included (400/401/403/413/429) — is readable by a page on an
 * origin some site allows, and exposes `Retry-After`, so the browser SDK can tell a bad
 * request from a rate limit and back off instead of seeing an opaque network error.
 * Routes that already set `Access-Control-Allow-Origin` (per site, or `*` for public
 * config) keep it; this only fills in what an early error left out. Origins no site
 * allows get nothing: their requests stay unreadable, as the 403 tests assert.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app.ts';
import { isOriginAllowed, listSites } from '../sites/index.ts';

/** Response headers a cross-origin script may read besides the CORS-safelisted ones. */
export const EXPOSED_HEADERS = ['Retry-After'];

/** Adds `name: value` to a comma-separated header once, keeping what is there. */
function addToList(headers: Headers, name: string, value: string): void {
  const current = headers.get(name);
  const items = (current ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.some((s) => s.toLowerCase() === value.toLowerCase())) return;
  headers.set(name, [...items, value].join(', '));
}

/** Middleware for the browser-facing API routes (mounted in app.ts before the routes). */
export const browserApiCors: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const origin = c.req.header('origin');
  if (origin === undefined || c.req.method === 'OPTIONS') return; // preflights are answered by the routes
  let allowed = c.res.headers.get('access-control-allow-origin');
  if (allowed === null) {
    const sites = await listSites(c.env);
    if (!sites.some((s) => isOriginAllowed(s, origin))) return;
    allowed = origin;
  }
  const origins = allowed;
  const addCors = (headers: Headers): void => {
    headers.set('access-control-allow-origin', origins);
    if (origins !== '*') addToList(headers, 'vary', 'Origin');
    for (const name of EXPOSED_HEADERS) addToList(headers, 'access-control-expose-headers', name);
  };
  // The routes' own responses have mutable headers: set ours in place (copying each
  // response cost ≈ 2–3 % of the ingest isolate). A response made elsewhere (a fetch) may
  // have immutable ones, and the first `set` throws: then copy it before adding ours.
  try {
    addCors(c.res.headers);
  } catch {
    const res = new Response(c.res.body, c.res);
    addCors(res.headers);
    c.res = undefined;
    c.res = res;
  }
};
