import { env, exports } from 'cloudflare:workers';
import { LIMITS } from '@attune/shared-schema';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../app.ts';
import {
  anonId,
  call,
  collect,
  envWithSites,
  makeEvent,
  ORIGIN,
  SITE,
  WRITE_KEY,
} from '../ingest/test-support.ts';
import { browserApiCors } from './index.ts';

const API = 'http://attune.test';
/** What the browser SDK needs to read an answer cross-origin. */
function expectReadable(res: Response, origin = ORIGIN): void {
  expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  expect(res.headers.get('access-control-expose-headers')).toContain('Retry-After');
  expect(res.headers.get('vary')).toContain('Origin');
}

describe('CORS on POST /v1/collect: errors are readable by allowed origins', () => {
  it('400, 401 and 413 carry the CORS headers the SDK needs', async () => {
    const invalid = await call('{not json');
    expect(invalid.status).toBe(400);
    expectReadable(invalid);
    const unknown = await collect([makeEvent(anonId())], { writeKey: 'pk_nobody' });
    expect(unknown.status).toBe(401);
    expectReadable(unknown);
    const huge = await call('x'.repeat(LIMITS.maxBatchBytes + 10));
    expect(huge.status).toBe(413);
    expectReadable(huge);
  });

  it('403 for an origin another site allows is readable; a foreign origin gets nothing', async () => {
    const twoSites = {
      ...envWithSites([
        { id: SITE, writeKey: WRITE_KEY, allowedOrigins: [ORIGIN] },
        { id: 'other', writeKey: 'pk_other', allowedOrigins: ['https://other.example'] },
      ]),
      // A site without secrets is skipped by the directory: give the second one its own.
      ATTUNE_SITE_SECRETS: JSON.stringify({
        [SITE]: { identitySecret: 'test-identity-secret', serverKey: 'sk_test_server_key' },
        other: { identitySecret: 'other-identity-secret', serverKey: 'sk_other_server_key' },
      }),
    } as Env;
    const misused = await collect([makeEvent(anonId())], { origin: 'https://other.example', env: twoSites });
    expect(misused.status).toBe(403);
    expectReadable(misused, 'https://other.example');
    const foreign = await collect([makeEvent(anonId())], { origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('429 exposes Retry-After to the page', async () => {
    const tight = envWithSites([
      {
        id: SITE,
        writeKey: WRITE_KEY,
        allowedOrigins: [ORIGIN],
        settings: { rateLimit: { anonymousPerSecond: 0.01, anonymousBurst: 1 } },
      },
    ]);
    const a = anonId('cors-rl');
    let last: Response | undefined;
    for (let i = 0; i < 3; i++)
      last = await collect([makeEvent(a)], { env: tight, headers: { 'cf-connecting-ip': '203.0.113.77' } });
    expect(last?.status).toBe(429);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    if (last) expectReadable(last);
  });

  it('a successful batch stays readable, with Retry-After exposed', async () => {
    const ok = await collect([makeEvent(anonId())]);
    expect(ok.status).toBe(200);
    expectReadable(ok);
  });
});

describe('CORS on GET /v1/config and GET /v1/decide', () => {
  const get = (path: string, origin = ORIGIN) =>
    exports.default.fetch(`${API}${path}`, { headers: { origin } });

  it('config is public: every answer, 400 and 401 included, is readable and exposes Retry-After', async () => {
    for (const path of [
      '/v1/config?writeKey=pk_demo_attune',
      '/v1/config',
      '/v1/config?writeKey=pk_nobody',
    ]) {
      const res = await get(path);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-expose-headers')).toContain('Retry-After');
    }
  });

  it('decide errors (400, 401) are readable by an allowed origin, not by a foreign one', async () => {
    const missing = await get('/v1/decide?slots=hero');
    expect(missing.status).toBe(400);
    expectReadable(missing);
    const unknown = await get('/v1/decide?slots=hero&writeKey=pk_nobody');
    expect(unknown.status).toBe(401);
    expectReadable(unknown);
    const badSlots = await get(`/v1/decide?slots=NOT%20A%20SLOT&writeKey=${WRITE_KEY}`);
    expect(badSlots.status).toBe(400);
    expectReadable(badSlots);
    const ok = await get(`/v1/decide?slots=hero&writeKey=${WRITE_KEY}`);
    expect(ok.status).toBe(200);
    expectReadable(ok);
    const foreign = await get('/v1/decide?slots=hero&writeKey=pk_nobody', 'https://evil.example');
    expect(foreign.status).toBe(401);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS middleware on responses with immutable headers', () => {
  it('still adds the headers (on a copy) when a route returns a response it cannot change', async () => {
    const immutable = Response.redirect('https://shop.example/elsewhere', 302);
    expect(() => immutable.headers.set('x-probe', '1')).toThrow(TypeError);
    const app = new Hono<AppEnv>();
    app.use('*', browserApiCors);
    app.get('/moved', () => immutable);
    const res = await app.request('/moved', { headers: { origin: ORIGIN } }, env);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://shop.example/elsewhere');
    expectReadable(res);
  });
});
