/** GET /v1/config?writeKey=…: the consent categories and policy version the SDK shows. */
import { Hono } from 'hono';
import type { AppEnv } from '../app.ts';
import { getSiteByWriteKey } from '../sites/index.ts';
import { getConsentConfig } from './consent-config.ts';

export const configRoutes = new Hono<AppEnv>();

// Public, non-personal data: any page may read it (a simple GET, so no preflight).
const PUBLIC_HEADERS = { 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=60' };

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
  return c.json(await getConsentConfig(c.env, site.id), 200, PUBLIC_HEADERS);
});
