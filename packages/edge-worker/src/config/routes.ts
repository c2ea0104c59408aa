/**
 * GET /v1/config?writeKey=…: the consent categories and policy version the SDK shows; 503
 * (not cached) when the site's configuration cannot be read, so that the tag keeps the
 * choice it stored rather than take the built-in policy version for a new one.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app.ts';
import { getSiteByWriteKey } from '../sites/index.ts';
import { readConsentConfig } from './consent-config.ts';

export const configRoutes = new Hono<AppEnv>();

// Public, non-personal data: any page may read it (a simple GET, so no preflight). Revalidated
// on every read, never served from a browser's cache unasked: the edge refuses a choice made
// under an older policy version the moment a marketer's change is published, so a tag holding
// a cached copy for a minute would keep sending claims the edge sets aside (no profile, no
// decisions) and its banner would not ask again. The ETag makes the check a 304.
const PUBLIC_HEADERS = { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' };
/** Seconds after which a configuration that could not be read is worth asking for again. */
const UNAVAILABLE_RETRY_AFTER_S = 10;

configRoutes.get('/v1/config', async (c) => {
  const writeKey = c.req.query('writeKey');
  if (writeKey === undefined || writeKey === '' || writeKey.length > 128) {
    return c.json(
      { error: { code: 'missing_write_key', message: 'pass your site write key as ?writeKey=…' } },
      400,
      PUBLIC_HEADERS,
    );
  }
  const site = await getSiteByWriteKey(c.env, writeKey);
  if (!site) {
    return c.json(
      {
        error: {
          code: 'unknown_write_key',
          message: 'unknown write key; check the writeKey your page sends',
        },
      },
      401,
      PUBLIC_HEADERS,
    );
  }
  const read = await readConsentConfig(c.env, site.id);
  if (!read.ok) {
    return c.json(
      {
        error: {
          code: 'config_unavailable',
          message:
            "the site's consent configuration could not be read (Directus unreachable); keep the visitor's stored choice and try again shortly",
        },
      },
      503,
      {
        'access-control-allow-origin': '*',
        // A shared cache must not keep the outage for the minute a configuration is kept.
        'cache-control': 'no-store',
        'retry-after': String(UNAVAILABLE_RETRY_AFTER_S),
      },
    );
  }
  // The policy version is a hash of everything the body says (see policyVersionOf).
  const etag = `"${read.config.policyVersion}"`;
  const headers = { ...PUBLIC_HEADERS, etag };
  if (
    c.req
      .header('if-none-match')
      ?.split(/\s*,\s*/)
      .includes(etag)
  )
    return c.body(null, 304, headers);
  return c.json(read.config, 200, headers);
});
