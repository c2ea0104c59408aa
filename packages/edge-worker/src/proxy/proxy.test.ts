import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { type CustomerAction, eventMessagesOf } from '@attune/shared-schema';
import { Hono } from 'hono';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppEnv } from '../app.ts';
import { createApp } from '../app.ts';
import { buildCatalogIndex } from '../catalog/catalog-index.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { getCatalog, invalidateCatalog, putCatalogSnapshot } from '../catalog/index.ts';
import { holdBuiltInConsentConfig, withCategoryDisabled } from '../config/test-support.ts';
import { applyCovisits, clearCovisitCache } from '../decide/covisitation.ts';
import { type PreparedDecision, prepareDecision } from '../decide/decide.ts';
import { anonymousIdInGroup, consentState, seedPerson, viewed } from '../decide/fixtures/people.ts';
import { SERVED_AFTER_MS } from '../decide/routes.ts';
import { forgetServings } from '../decide/served-memo.ts';
import {
  anonId,
  consentFor,
  gzip,
  makeEvent,
  ORIGIN as ORIGIN_3000,
  recordQueue,
  WRITE_KEY,
} from '../ingest/test-support.ts';
import { rewriteSlots } from '../rewrite/index.ts';
import { endedDigest, originEndsId } from './cookies.ts';
import { mountEdgeProxy } from './index.ts';

/** The shop's own origin as the browser sees it (an allowed origin of site `demo`). */
const SHOP = 'http://127.0.0.1:8787';
const ORIGIN = 'http://origin.fixture.test';
const page = (path: string, cookie?: string) =>
  exports.default.fetch(`${SHOP}${path}`, {
    headers: { accept: 'text/html,application/xhtml+xml', ...(cookie !== undefined ? { cookie } : {}) },
  });
/** A collect call through the first-party path, as the SDK on the shop's page sends it. */
const firstPartyCollect = (
  batch: CustomerAction[],
  {
    writeKey = WRITE_KEY,
    origin = SHOP,
    cookie,
  }: { writeKey?: string; origin?: string; cookie?: string } = {},
) =>
  exports.default.fetch(`${SHOP}/attune/collect`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', origin, ...(cookie !== undefined ? { cookie } : {}) },
    body: JSON.stringify({ writeKey, sentAt: new Date().toISOString(), batch }),
  });
/** A browser's cookies for the shop, as the answers' Set-Cookie headers leave them. */
function cookieJar() {
  const jar = new Map<string, string>();
  return {
    get: (name: string) => jar.get(name),
    /** Takes an answer's cookies: a Max-Age of 0 deletes one. */
    take(res: Response) {
      for (const line of res.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq);
        if (/;\s*max-age=0(;|$)/i.test(line)) jar.delete(name);
        else jar.set(name, pair.slice(eq + 1));
      }
      return res;
    },
    header: () => [...jar].map(([name, value]) => `${name}=${value}`).join('; '),
  };
}
const originText = async (path: string) => (await fetch(`${ORIGIN}${path}`)).text();
const slot = (html: string, name: string) =>
  new RegExp(`<[a-z]+[^>]*data-attune-slot="?${name}"?[^>]*>([\\s\\S]*?)</section>`).exec(html)?.[1];

let fan: string;
let withdrawn: string;
let heldOut: string;

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
  await holdBuiltInConsentConfig(env);
  fan = anonymousIdInGroup('outdoor-fan', false);
  await seedPerson(env, `anon:${fan}`, { analytics: true, personalization: true }, [
    viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
    viewed('rain-shell', 'outdoor', ['jacket', 'waterproof']),
  ]);
  withdrawn = anonymousIdInGroup('withdrawn', false);
  await seedPerson(env, `anon:${withdrawn}`, { analytics: false, personalization: false });
  heldOut = anonymousIdInGroup('held-out', true);
  await seedPerson(env, `anon:${heldOut}`, { analytics: true, personalization: true }, [
    viewed('grinder', 'coffee', ['equipment']),
  ]);
});

/** The decision for the outdoor fan on the trail jacket's page, made without a rush. */
const fansJacketDecision = () =>
  prepareDecision(env, {
    siteId: 'demo',
    personKey: `anon:${fan}`,
    anonymousId: fan,
    slots: [],
    productId: 'trail-jacket',
    budgetMs: 2000,
  });

/** A decision the test holds back until it calls `release`. */
function heldDecision() {
  let settle: (ready: PreparedDecision | null) => void = () => undefined;
  const held = new Promise<PreparedDecision | null>((resolve) => {
    settle = resolve;
  });
  return { held, release: (ready: PreparedDecision | null) => settle(ready) };
}

/** The trail jacket's page as browser `aid` asks for it, through `app` (the real app or a proxy with a test preparer). */
const jacketPage = (app: Hono<AppEnv>, aid: string, ctx: ExecutionContext, bindings: object = env) =>
  app.fetch(
    new Request(`${SHOP}/products/trail-jacket`, {
      headers: { accept: 'text/html', cookie: `attune_aid=${aid}` },
    }),
    bindings,
    ctx,
  );

/** Reads a streamed body until `marker` has arrived (what came so far); fails if the stream ends first. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  marker: string,
  decoder: TextDecoder,
) {
  let received = '';
  while (!received.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${marker}`);
    received += decoder.decode(value, { stream: true });
  }
  return received;
}

/** Reads the rest of a streamed body. */
async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>, decoder: TextDecoder) {
  let received = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return received + decoder.decode();
    received += decoder.decode(value, { stream: true });
  }
}

describe('edge proxy: slots filled in the HTML response', () => {
  it('fills the slots of a consented person and leaves the rest of the page as the origin sent it', async () => {
    const res = await page('/products/trail-jacket', `attune_aid=${fan}; other=1`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(slot(html, 'hero')).toContain('Built for wet trails');
    expect(html).toMatch(
      /data-attune-slot="hero"[^>]*data-attune-variant="hero-outdoor"[^>]*data-attune-decision="[0-9A-Z]{26}"/,
    );
    const recs = slot(html, 'recommendations') ?? '';
    expect(recs).not.toContain('Origin picks');
    // On the trail jacket's own page, it is never recommended to itself.
    expect(recs).not.toContain('data-product-id="trail-jacket"');
    expect(recs).toContain('class="card-reason"');
    expect(slot(html, 'promo')).toContain('Free returns for 30 days');
    // A slot with no content in the catalog keeps the origin's default; everything else is intact.
    expect(slot(html, 'unknown-slot')).toBe('Origin unknown');
    const origin = await originText('/products/trail-jacket');
    expect(html.replace(/<section[\s\S]*?<\/section>/g, '')).toBe(
      origin.replace(/<section[\s\S]*?<\/section>/g, ''),
    );
  });

  it('marks the personalized response private and keeps the origin’s other headers', async () => {
    // Headers never wait for the decision: the id refresh it calls for is written once it is
    // known — on this page if it was ready in time, else on the person's next page.
    await (await page('/products/trail-jacket', `attune_aid=${fan}`)).arrayBuffer();
    const res = await page('/products/trail-jacket', `attune_aid=${fan}`);
    await res.arrayBuffer();
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    expect(res.headers.get('vary')).toContain('Cookie');
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('last-modified')).toBeNull();
    // CDNs that follow their own header over Cache-Control must not store it either.
    expect(res.headers.get('cdn-cache-control')).toBeNull();
    expect(res.headers.get('surrogate-control')).toBeNull();
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('x-origin')).toBe('fixture');
    const cookies = res.headers.getSetCookie();
    expect(cookies).toContain('origin_session=1; Path=/');
    // The first-party id is refreshed server-side for 400 days (not readable-only-by-server: the SDK shares it).
    const aid = cookies.find((c) => c.startsWith('attune_aid='));
    expect(aid).toBe(`attune_aid=${fan}; Path=/; Max-Age=34560000; SameSite=Lax`);
    expect(aid).not.toContain('HttpOnly');
  });

  it('fills the slots when the browser revalidates a copy it kept, instead of letting it show that copy', async () => {
    const res = await exports.default.fetch(`${SHOP}/products/trail-jacket`, {
      headers: {
        accept: 'text/html',
        cookie: `attune_aid=${fan}`,
        'if-none-match': '"origin-etag"',
        'if-modified-since': 'Wed, 25 Nov 2026 10:00:00 GMT',
      },
    });
    expect(res.status).toBe(200);
    expect(slot(await res.text(), 'hero')).toContain('Built for wet trails');
    // Without a person, the origin's 304 still saves the transfer.
    const anonymous = await exports.default.fetch(`${SHOP}/products/trail-jacket`, {
      headers: { accept: 'text/html', 'if-none-match': '"origin-etag"' },
    });
    expect(anonymous.status).toBe(304);
  });

  it('asks the origin only for codings it can rewrite, and passes any other coding through untouched', async () => {
    const asked = await exports.default.fetch(`${SHOP}/echo-encoding`, {
      headers: {
        accept: 'text/html',
        cookie: `attune_aid=${fan}`,
        'accept-encoding': 'zstd, deflate, gzip, br',
      },
    });
    const html = await asked.text();
    expect(/<p id="asked">([^<]*)<\/p>/.exec(html)?.[1]).toBe('gzip, br');
    expect(slot(html, 'hero')).toContain('Built for wet trails');
    // Never a coding the browser did not offer.
    const gzipOnly = await exports.default.fetch(`${SHOP}/echo-encoding`, {
      headers: { accept: 'text/html', cookie: `attune_aid=${fan}`, 'accept-encoding': 'zstd, gzip;q=0.8' },
    });
    expect(/<p id="asked">([^<]*)<\/p>/.exec(await gzipOnly.text())?.[1]).toBe('gzip;q=0.8');

    const other = await page('/custom-encoded', `attune_aid=${fan}`);
    expect(other.headers.get('content-encoding')).toBe('x-custom');
    expect(await other.text()).toBe(
      '<html><body><section data-attune-slot="hero">Origin hero</section></body></html>',
    );
  });

  it('keeps the origin page byte for byte, with its cache headers, without consent', async () => {
    const res = await page('/products/trail-jacket');
    expect(await res.text()).toBe(await originText('/products/trail-jacket'));
    expect(res.headers.get('cache-control')).toBe('public, max-age=60');
    expect(res.headers.get('etag')).toBe('"origin-etag"');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('attune_aid='))).toBe(false);
  });

  it('marks a page served without a person cookie as varying on Cookie, so a copy kept before consent is not shown after it', async () => {
    // The origin lets its page be kept a minute (`public, max-age=60`). Kept before the visitor
    // consented, a browser or a cache in front showed that copy, unpersonalized, for the
    // same URL after consent wrote attune_aid: nothing said the page depends on the cookie.
    for (const cookie of [undefined, 'shop_session=s1', 'attune_consent=%7Bbroken']) {
      const res = await page('/products/trail-jacket', cookie);
      await res.arrayBuffer();
      expect(res.headers.get('cache-control')).toBe('public, max-age=60');
      expect(res.headers.get('vary')).toBe('Cookie');
    }
    // Named once, beside what the origin varies on.
    const varied = await page('/varied');
    await varied.arrayBuffer();
    expect(varied.headers.get('vary')).toBe('Accept-Language, cookie');
    // Not a page (an image, a script, JSON): not rewritten for anyone, left as it is.
    const js = await page('/app.js');
    expect(js.headers.get('vary')).toBeNull();
  });

  it('answers methods a page does not use (TRACE, PROPFIND) itself, 405, without forwarding the cookies', async () => {
    for (const method of ['TRACE', 'PROPFIND']) {
      const res = await exports.default.fetch(`${SHOP}/products/trail-jacket`, {
        method,
        headers: { cookie: 'attune_aid=someone; session=secret' },
      });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      expect(await res.text()).toBe(`${method} is not passed on to the site.`);
    }
  });

  it('does not pass /v1 (no trailing slash) on to the site: it is the API’s path', async () => {
    expect((await page('/v1')).status).toBe(404);
  });

  it('serves the held-out person the origin’s defaults', async () => {
    const res = await page('/products/trail-jacket', `attune_aid=${heldOut}`);
    const html = await res.text();
    expect(slot(html, 'hero')).toContain('Origin hero');
    expect(slot(html, 'recommendations')).toContain('Origin picks');
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
  });
});

describe('edge proxy: a byte range of a person’s page', () => {
  const ranged = (path: string, headers: Record<string, string>) =>
    exports.default.fetch(`${SHOP}${path}`, { headers });

  it('gets the whole page, personalized, never a slice of the origin’s bytes', async () => {
    // A slice of the origin's page is not a slice of the page this person is served: spliced
    // onto what the browser holds, it would break the page (and it would not be personalized).
    const asked: Record<string, string>[] = [
      { range: 'bytes=0-99' },
      { range: 'bytes=100-', 'if-range': '"origin-etag"' },
    ];
    for (const range of asked) {
      const res = await ranged('/products/trail-jacket', {
        accept: 'text/html',
        cookie: `attune_aid=${fan}`,
        ...range,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-range')).toBeNull();
      expect(res.headers.get('cache-control')).toBe('private, no-cache');
      const html = await res.text();
      expect(html).toMatch(/^<!doctype html>[\s\S]*<\/html>$/);
      expect(slot(html, 'hero')).toContain('Built for wet trails');
    }
  });

  it('keeps the byte ranges of images, media and scripts, and of pages served as the origin sent them', async () => {
    const png = await ranged('/logo.png', {
      accept: 'image/avif,image/webp,*/*',
      'sec-fetch-dest': 'image',
      cookie: `attune_aid=${fan}`,
      range: 'bytes=0-3',
    });
    expect(png.status).toBe(206);
    expect(png.headers.get('content-range')).toBe('bytes 0-3/16');
    expect(new Uint8Array(await png.arrayBuffer())).toEqual(new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
    // Without a person cookie the page is the origin's bytes: a range of them is still right.
    const anonymous = await ranged('/products/trail-jacket', { accept: 'text/html', range: 'bytes=0-14' });
    expect(anonymous.status).toBe(206);
    expect(await anonymous.text()).toBe('<!doctype html>');
  });
});

describe('edge proxy: HEAD of a person’s page', () => {
  it('answers the headers the GET of that page has: private, no validators, no length', async () => {
    const ask = (method: string) =>
      exports.default.fetch(`${SHOP}/products/trail-jacket`, {
        method,
        headers: { accept: 'text/html', cookie: `attune_aid=${fan}`, 'if-none-match': '"origin-etag"' },
      });
    const get = await ask('GET');
    await get.arrayBuffer();
    const head = await ask('HEAD');
    // Before, HEAD was the origin's: 304 (GET is 200), `public, max-age=60`, the CDN headers
    // and the ETag of a page GET never serves to this person.
    expect(head.status).toBe(get.status);
    for (const name of [
      'cache-control',
      'cdn-cache-control',
      'surrogate-control',
      'etag',
      'last-modified',
      'content-length',
    ])
      expect(head.headers.get(name), name).toBe(get.headers.get(name));
    expect(head.headers.get('vary')).toContain('Cookie');
    expect(await head.text()).toBe('');
  });

  it('of a page without a person cookie stays the origin’s, varying on Cookie as its GET does', async () => {
    const head = await exports.default.fetch(`${SHOP}/products/trail-jacket`, {
      method: 'HEAD',
      headers: { accept: 'text/html' },
    });
    expect(head.headers.get('cache-control')).toBe('public, max-age=60');
    expect(head.headers.get('etag')).toBe('"origin-etag"');
    // As its GET: the page depends on the cookie.
    expect(head.headers.get('vary')).toBe('Cookie');
  });
});

describe('edge proxy: a page the origin forbids storing stays unstorable', () => {
  /** The response's Cache-Control directives. */
  const directives = (res: Response) => (res.headers.get('cache-control') ?? '').split(/,\s*/);

  it('keeps the origin’s no-store on a personalized page, so after sign-out Back cannot show the previous person’s page', async () => {
    // Next's dynamic pages (a signed-in name, the cart, the checkout) say: store nowhere.
    const res = await page('/account', `attune_aid=${fan}`);
    expect(slot(await res.text(), 'hero')).toContain('Built for wet trails');
    expect(directives(res)).toEqual(expect.arrayContaining(['private', 'no-store']));
    // Also on the page a fresh visitor's id is minted on.
    const consent = encodeURIComponent(JSON.stringify(consentState({ analytics: true })));
    const minted = await page('/account', `attune_consent=${consent}`);
    await minted.arrayBuffer();
    expect(minted.headers.getSetCookie().some((c) => c.startsWith('attune_aid='))).toBe(true);
    expect(directives(minted)).toEqual(expect.arrayContaining(['private', 'no-store']));
  });
});

describe('edge proxy: a page in a charset the rewriter cannot parse', () => {
  const originBytes = async (path: string) =>
    new Uint8Array(await (await fetch(`${ORIGIN}${path}`)).arrayBuffer());

  it.each(['x-unknown', 'replacement', 'utf-16', 'utf-16le', 'iso-2022-jp'])(
    'serves a consented visitor the origin’s page as it is (charset=%s), marked private, not a 500',
    async (charset) => {
      const path = `/charset?cs=${charset}`;
      const res = await page(path, `attune_aid=${fan}`);
      expect(res.status).toBe(200);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(await originBytes(path));
      expect(res.headers.get('content-type')).toBe(`text/html; charset=${charset}`);
      expect(res.headers.get('cache-control')).toBe('private, no-cache');
      expect(res.headers.get('vary')).toContain('Cookie');
    },
  );

  it('still fills the slots of a page in a charset it parses', async () => {
    const res = await page('/charset?cs=windows-1252', `attune_aid=${fan}`);
    expect(slot(await res.text(), 'hero')).toContain('Built for wet trails');
  });
});

describe('edge proxy: a page whose charset only its <meta> declares', () => {
  it('gets slot content the browser reads as written, whatever the page’s encoding', async () => {
    const res = await page('/legacy', `attune_aid=${fan}`);
    // As the browser reads it: in the charset of its <meta>.
    const html = new TextDecoder('windows-1252').decode(await res.arrayBuffer());
    expect(html).toContain('<p>Café crème</p>');
    const recs = slot(html, 'recommendations') ?? '';
    expect(recs).toContain('class="card-price"');
    // Before, the prices went in as UTF-8 bytes, and a windows-1252 page showed `â‚¬189.00`.
    expect(recs).not.toContain('â');
    expect(recs).toMatch(/class="card-price">(€|&#8364;)[0-9]/);
  });
});

describe('edge proxy: a page while the catalog is slow to load', () => {
  afterEach(async () => {
    // Also makes the slow load, which is still running, unable to install what it finds.
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
  });

  it('is personalized within the budget from the last catalog held, as /v1/decide is, not served defaults', async () => {
    // This isolate holds a catalog; then the webhook invalidates it, and Directus is slower
    // than the whole budget (the fixture Directus answers this token after 2 s).
    expect((await getCatalog(env, 'demo')).version).toBe(FIXTURE_CATALOG.version);
    await invalidateCatalog(env);
    const slowDirectus = {
      ...env,
      DIRECTUS_URL: 'http://directus.fixture.test/',
      DIRECTUS_TOKEN: 'late-2000-directus-token',
      DECISION_BUDGET_MS: '1000',
    };
    const ctx = createExecutionContext();
    const html = await (await jacketPage(createApp(), fan, ctx, slowDirectus)).text();
    expect(slot(html, 'hero')).toContain('Built for wet trails');
    expect(slot(html, 'recommendations')).toContain('class="card"');
    await waitOnExecutionContext(ctx);
    // The load went on after the page; it fails (an unknown token) and the last catalog stays.
    expect((await getCatalog(slowDirectus, 'demo')).version).toBe(FIXTURE_CATALOG.version);
  });
});

describe('edge proxy: a page’s images, scripts and stylesheets start no decision', () => {
  it('makes no decision reads for them and leaves their Accept-Encoding alone; navigations still get one', async () => {
    const ready = await fansJacketDecision();
    let asked = 0;
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, {
      prepare: async () => {
        asked += 1;
        return ready;
      },
    });
    const fetchAs = async (path: string, headers: Record<string, string>) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${SHOP}${path}`, { headers: { cookie: `attune_aid=${fan}`, ...headers } }),
        env,
        ctx,
      );
      const body = await res.text();
      await waitOnExecutionContext(ctx);
      return body;
    };
    // As Chromium asks for a page's assets: each Accept takes any type.
    await fetchAs('/logo.png', {
      'sec-fetch-dest': 'image',
      accept: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
    });
    await fetchAs('/app.js', { 'sec-fetch-dest': 'script', accept: '*/*' });
    await fetchAs('/styles.css', { 'sec-fetch-dest': 'style', accept: 'text/css,*/*;q=0.1' });
    const echoed = await fetchAs('/echo-encoding', {
      'sec-fetch-dest': 'script',
      accept: '*/*',
      'accept-encoding': 'zstd, gzip, br',
    });
    expect(asked).toBe(0);
    expect(/<p id="asked">([^<]*)<\/p>/.exec(echoed)?.[1]).toBe('zstd, gzip, br');
    // A navigation is personalized, also one whose only sign is its fetch metadata.
    const navigation = await fetchAs('/products/trail-jacket', {
      'sec-fetch-dest': 'document',
      accept: '*/*',
    });
    expect(slot(navigation, 'hero')).toContain('Built for wet trails');
    expect(asked).toBe(1);
  });
});

describe('edge proxy: the anonymous-id cookie follows consent', () => {
  it('mints a first-party id for a fresh visitor whose consent allows storing one', async () => {
    const consent = encodeURIComponent(JSON.stringify(consentState({ analytics: true })));
    const res = await page('/', `attune_consent=${consent}`);
    await res.arrayBuffer();
    const aid = res.headers.getSetCookie().find((c) => c.startsWith('attune_aid='));
    expect(aid).toMatch(/^attune_aid=[0-9a-f-]{36}; Path=\/; Max-Age=34560000; SameSite=Lax$/);
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
  });

  it('mints none for a fresh visitor whose consent was given under an earlier policy version', async () => {
    // The site's policy changed since: the SDK asks the person again, and until they answer
    // no purpose is granted, so no id is stored either.
    const earlier = consentState({
      analytics: true,
      personalization: true,
      policyVersion: 'an-earlier-policy',
    });
    const res = await page('/', `attune_consent=${encodeURIComponent(JSON.stringify(earlier))}`);
    await res.arrayBuffer();
    expect(res.headers.getSetCookie().some((c) => c.startsWith('attune_aid='))).toBe(false);
  });

  it('writes nothing for a fresh visitor who has not consented', async () => {
    const consent = encodeURIComponent(JSON.stringify(consentState({})));
    for (const cookie of [undefined, `attune_consent=${consent}`, 'attune_consent=%7Bbroken']) {
      const res = await page('/', cookie);
      await res.arrayBuffer();
      expect(res.headers.getSetCookie().some((c) => c.startsWith('attune_aid='))).toBe(false);
    }
  });

  it('expires the id when the person’s recorded consent no longer allows it, and personalizes nothing', async () => {
    const first = await page('/products/trail-jacket', `attune_aid=${withdrawn}`);
    expect(await first.text()).toBe(await originText('/products/trail-jacket'));
    // The first page's headers may have left before the decision; the next page expires the id at the latest.
    const res = await page('/products/trail-jacket', `attune_aid=${withdrawn}`);
    const html = await res.text();
    expect(res.headers.getSetCookie()).toContain('attune_aid=; Path=/; Max-Age=0; SameSite=Lax');
    expect(html).toBe(await originText('/products/trail-jacket'));
  });
});

describe('edge proxy: an erased person’s id cookie is not refreshed', () => {
  const idCookie = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith('attune_aid='));

  it('after an admin erasure, no page refreshes attune_aid from a grant an earlier page remembered', async () => {
    const erased = anonymousIdInGroup('erased-by-admin', false);
    await seedPerson(env, `anon:${erased}`, { analytics: true, personalization: true });
    // Before: the decision grants a stored id, and the page refreshes it (for 400 days).
    for (let i = 0; i < 2; i++) await (await page('/products/trail-jacket', `attune_aid=${erased}`)).text();
    const before = await page('/products/trail-jacket', `attune_aid=${erased}`);
    await before.text();
    expect(idCookie(before)).toBe(`attune_aid=${erased}; Path=/; Max-Age=34560000; SameSite=Lax`);

    const erasure = await exports.default.fetch(`${SHOP}/v1/people/anon:${erased}?site=demo`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer test-admin-token' },
    });
    expect(erasure.status).toBe(200);

    // The next page is not personalized; its headers may still carry the refresh the last
    // decision before the erasure called for (headers never wait for the decision: the
    // cookie follows consent on the first or second page after a change). Its decision finds
    // no recorded consent, and no later page refreshes the id.
    const next = await page('/products/trail-jacket', `attune_aid=${erased}`);
    expect(await next.text()).toBe(await originText('/products/trail-jacket'));
    const after = await page('/products/trail-jacket', `attune_aid=${erased}`);
    expect(await after.text()).toBe(await originText('/products/trail-jacket'));
    expect(idCookie(after) ?? 'no cookie').not.toMatch(/Max-Age=[1-9]/);
    // Nor a page whose decision is not ready in time: what this isolate remembers is no grant now.
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: () => new Promise<PreparedDecision | null>(() => undefined) });
    const ctx = createExecutionContext();
    const pending = await jacketPage(app, erased, ctx, { ...env, DECISION_BUDGET_MS: '0' });
    await pending.text();
    expect(idCookie(pending) ?? 'no cookie').not.toMatch(/Max-Age=[1-9]/);
  });
});

describe('edge proxy: headers never wait for the decision', () => {
  it('sends the origin’s headers while the decision is still held back; only the slots wait for it', async () => {
    const { held, release } = heldDecision();
    let asked = 0;
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, {
      prepare: () => {
        asked += 1;
        return held;
      },
    });
    const ctx = createExecutionContext();
    const visitor = anonymousIdInGroup('never-seen-before', false);
    const res = await jacketPage(app, visitor, ctx);
    // The response (status and headers) is here although the decision has not been made.
    expect(asked).toBe(1);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    expect(res.headers.get('vary')).toContain('Cookie');
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('x-origin')).toBe('fixture');
    // No verdict about this id yet: its cookie is left alone rather than waited for.
    expect(res.headers.getSetCookie().some((c) => c.startsWith('attune_aid='))).toBe(false);
    release(await fansJacketDecision());
    const html = await res.text();
    expect(slot(html, 'hero')).toContain('Built for wet trails');
    expect(html).toContain('<footer>© Fixture shop</footer>');
    await waitOnExecutionContext(ctx);
  });
});

describe('edge proxy: the page above the first slot never waits for the decision', () => {
  it('streams the head and header while the decision is held back, then the filled slots', async () => {
    const { held, release } = heldDecision();
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: () => held });
    const ctx = createExecutionContext();
    // A deadline far away: if the bytes above the slot waited for the decision, the read
    // below would not return until the test released it (and the test would time out).
    const res = await jacketPage(app, fan, ctx, { ...env, DECISION_BUDGET_MS: '60000' });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let received = await readUntil(reader, '</header>', decoder);
    expect(received).toContain('<title>Trail Jacket</title>');
    expect(received).not.toContain('data-attune-slot');
    release(await fansJacketDecision());
    received += await readRest(reader, decoder);
    expect(slot(received, 'hero')).toContain('Built for wet trails');
    expect(slot(received, 'recommendations')).toContain('class="card"');
    expect(received).toContain('<footer>© Fixture shop</footer>');
    await waitOnExecutionContext(ctx);
  });
});

describe('edge proxy: a decision ready in time fills slots the page reaches late', () => {
  it('fills every slot although the page streams past the deadline, when the decision was already made', async () => {
    const ready = await fansJacketDecision();
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: async () => ready });
    const ctx = createExecutionContext();
    // A budget of 0: the deadline has passed before the origin's first byte.
    const res = await jacketPage(app, fan, ctx, { ...env, DECISION_BUDGET_MS: '0' });
    const html = await res.text();
    expect(slot(html, 'hero')).toContain('Built for wet trails');
    expect(slot(html, 'recommendations')).toContain('class="card"');
    await waitOnExecutionContext(ctx);
  });
});

describe('edge proxy: a recommendations decision with no products keeps the default', () => {
  /** The trail jacket's page for the fan, decided on `products` (with the fixture's slot content, or none). */
  async function pageWith(products: typeof FIXTURE_CATALOG.products, slotContent: boolean) {
    const ready = await fansJacketDecision();
    const catalog = buildCatalogIndex({
      ...FIXTURE_CATALOG,
      version: `recs-${products.length}-${slotContent}`,
      products,
      slotContent: slotContent ? FIXTURE_CATALOG.slotContent : [],
    });
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: async () => ({ ...ready, catalog }) });
    const ctx = createExecutionContext();
    const html = await (await jacketPage(app, fan, ctx)).text();
    await waitOnExecutionContext(ctx);
    return html;
  }

  it('keeps the shop’s picks when the catalog is empty (Directus down on a cold isolate)', async () => {
    const html = await pageWith([], false);
    expect(slot(html, 'recommendations')).toBe('<h2>Origin picks</h2>');
    expect(html).not.toContain('data-attune-variant');
    expect(html).toBe(await originText('/products/trail-jacket'));
  });

  it('keeps the shop’s picks when every candidate is excluded, and fills the other slots', async () => {
    const onlyTheJacket = FIXTURE_CATALOG.products.filter((p) => p.id === 'trail-jacket');
    const html = await pageWith(onlyTheJacket, true);
    expect(slot(html, 'recommendations')).toBe('<h2>Origin picks</h2>');
    expect(html).not.toContain('<ul class="cards"></ul>');
    expect(html).toMatch(/data-attune-slot="recommendations" data-attune-product="trail-jacket">/);
    expect(slot(html, 'hero')).toContain('Built for wet trails');
  });
});

describe('edge proxy: a held-out person is logged where a treated person like them is shown something', () => {
  it('logs the slots a treated person would see filled, not the ones the holdout’s defaults would fill', async () => {
    // A shop whose hero has targeted banners only (no default), and whose one product is the
    // one on screen (nothing to recommend): the treated fan sees the outdoor hero and the
    // promo's default, and the shop's own picks.
    const catalog = buildCatalogIndex({
      ...FIXTURE_CATALOG,
      version: 'held-out-exposures',
      products: FIXTURE_CATALOG.products.filter((p) => p.id === 'trail-jacket'),
      slotContent: FIXTURE_CATALOG.slotContent.filter((v) => v.id !== 'hero-default'),
    });
    const ready = await fansJacketDecision();
    const servedOn = async (holdout: boolean) => {
      forgetServings();
      const queue = recordQueue();
      const app = new Hono<AppEnv>();
      mountEdgeProxy(app, { prepare: async () => ({ catalog, ctx: { ...ready.ctx, holdout } }) });
      const ctx = createExecutionContext();
      const html = await (await jacketPage(app, fan, ctx)).text();
      await waitOnExecutionContext(ctx);
      await new Promise((resolve) => setTimeout(resolve, SERVED_AFTER_MS + 20));
      queue.restore();
      const slots = eventMessagesOf(queue.messages)
        .filter((m) => m.event.name === 'decision.served')
        .map((m) => `${m.event.properties?.slot} ${m.event.properties?.holdout}`)
        .sort();
      return { html, slots };
    };
    const treated = await servedOn(false);
    expect(slot(treated.html, 'hero')).toContain('Built for wet trails');
    expect(slot(treated.html, 'recommendations')).toBe('<h2>Origin picks</h2>');
    expect(treated.slots).toEqual(['hero false', 'promo false']);
    // The held-out fan keeps the shop's page; they count on the same slots, no others (before:
    // not the hero, which a treated fan sees, but the recommendations, which nobody sees).
    const held = await servedOn(true);
    expect(held.html).toBe(await originText('/products/trail-jacket'));
    expect(held.slots).toEqual(['hero true', 'promo true']);
  });
});

describe('edge proxy: a decision that comes after the deadline', () => {
  it('is not logged as served for a slot that kept its default', async () => {
    const queue = recordQueue();
    const { held, release } = heldDecision();
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: () => held });
    const ctx = createExecutionContext();
    const id = crypto.randomUUID();
    const res = await app.fetch(
      new Request(`${SHOP}/large?id=${id}`, {
        headers: { accept: 'text/html', cookie: `attune_aid=${fan}` },
      }),
      { ...env, DECISION_BUDGET_MS: '30' },
      ctx,
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    // The deadline passed with no decision: the hero keeps the origin's content.
    let received = await readUntil(reader, 'FIRST-PART-END', decoder);
    expect(received).toContain('<h1>Origin hero</h1>');
    // The decision comes while the origin still holds the rest of the page.
    release(await fansJacketDecision());
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fetch(`${ORIGIN}/__release?id=${id}`);
    received += await readRest(reader, decoder);
    await waitOnExecutionContext(ctx);
    const servedSlots = queue.messages
      .filter((m) => m.kind === 'event' && m.event.name === 'decision.served')
      .map((m) => (m.kind === 'event' ? m.event.properties?.slot : undefined));
    // Before, the hero's late decision was logged as served: lift counted an exposure nobody saw.
    expect(servedSlots).not.toContain('hero');
    queue.restore();
  });
});

describe('edge proxy: defaults on timeout or error, never a broken page', () => {
  it('keeps the origin content when the decision misses its budget', async () => {
    const app = createApp();
    const ctx = createExecutionContext();
    const res = await jacketPage(app, fan, ctx, { ...env, DECISION_BUDGET_MS: '0' });
    expect(await res.text()).toBe(await originText('/products/trail-jacket'));
    await waitOnExecutionContext(ctx);
  });

  it('keeps a slot’s default when its decision throws or never comes, and streams the rest', async () => {
    const origin = await fetch(`${ORIGIN}/products/trail-jacket`);
    const rewritten = rewriteSlots(
      origin,
      (request) => {
        if (request.slot === 'hero') throw new Error('renderer failed');
        if (request.slot === 'recommendations') return new Promise(() => undefined);
        return { html: '<b>filled</b>', variant: 'v', decisionId: 'd' };
      },
      { deadline: Date.now() + 20 },
    );
    const html = await rewritten.text();
    expect(slot(html, 'hero')).toContain('Origin hero');
    expect(slot(html, 'recommendations')).toContain('Origin picks');
    expect(slot(html, 'promo')).toBe('<b>filled</b>');
    expect(html).toContain('<footer>© Fixture shop</footer>');
    expect(html.endsWith('</body></html>')).toBe(true);
  });

  it('rewrites malformed HTML without losing what follows a slot', async () => {
    const res = await page('/malformed', `attune_aid=${fan}`);
    const html = await res.text();
    expect(html).toContain('Built for wet trails');
    expect(html).toContain('<p>Between slots & stray ampersand < lone angle');
    expect(html).toContain('</span>');
    expect(html.startsWith('<html><head><title>Broken</title>')).toBe(true);
    // The recommendations slot is never closed: its filled content is followed by the origin's tail, not cut.
    expect(slot(`${html}</section>`, 'recommendations')).toContain('class="card"');
    expect(html).toContain('<h2>Origin picks</h2>');
    expect(html.endsWith('<p>Tail text after an unclosed slot</p>')).toBe(true);
  });

  it('sends the first bytes of a large page before the origin has finished it', async () => {
    const id = crypto.randomUUID();
    const res = await page(`/large?id=${id}`, `attune_aid=${fan}`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let received = await readUntil(reader, 'FIRST-PART-END', decoder);
    // The origin is still holding the rest of the page, yet the filled hero is already here.
    expect(received).toContain('Built for wet trails');
    expect(received).not.toContain('LAST-PART');
    await fetch(`${ORIGIN}/__release?id=${id}`);
    received += await readRest(reader, decoder);
    expect(received.length).toBeGreaterThan(1_000_000);
    expect(received).toContain('<p>LAST-PART</p></body></html>');
    // A slot the stream reaches after the decision deadline (the test held the origin open)
    // is filled if the decision was ready by then, else keeps its default — never broken.
    expect(slot(received, 'recommendations')).toMatch(
      /^(<h2>Picked for you<\/h2><ul class="cards">.*<\/ul>|<h2>Origin picks<\/h2>)$/,
    );
  });
});

describe('edge proxy: what passes through untouched', () => {
  it('passes non-HTML through untouched, headers and bytes', async () => {
    const js = await page('/app.js', `attune_aid=${fan}`);
    expect(js.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(js.headers.get('etag')).toBe('"js"');
    expect(js.headers.getSetCookie()).toEqual([]);
    expect(await js.text()).toBe(await originText('/app.js'));
    const png = await exports.default.fetch(`${SHOP}/logo.png`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await png.arrayBuffer()).slice(0, 4)).toEqual(
      new Uint8Array([0x89, 0x50, 0x4e, 0x47]),
    );
  });

  it('forwards other methods with their body, redirects and error pages as they are', async () => {
    const post = await exports.default.fetch(`${SHOP}/form`, { method: 'POST', body: 'a=1' });
    expect(await post.text()).toBe('POST a=1 127.0.0.1:8787');
    const redirect = await exports.default.fetch(`${SHOP}/redirect`, {
      headers: { accept: 'text/html', cookie: `attune_aid=${fan}` },
      redirect: 'manual',
    });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/products/trail-jacket');
    const missing = await page('/no-such-page', `attune_aid=${fan}`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('<div data-attune-slot="hero">Origin hero</div>');
  });

  it('moves a redirect the origin builds on its own host to the shop’s host, keeping its path, query and fragment', async () => {
    // The origin is asked on its own host and answers an absolute redirect there (as nginx
    // does for a directory without its slash); passed on, it took the visitor off the shop.
    for (const cookie of [undefined, `attune_aid=${fan}`]) {
      const moved = await exports.default.fetch(`${SHOP}/shop`, {
        headers: { accept: 'text/html', ...(cookie !== undefined ? { cookie } : {}) },
        redirect: 'manual',
      });
      expect(moved.status).toBe(301);
      expect(moved.headers.get('location')).toBe(`${SHOP}/shop/?sort=new#top`);
    }
    // Another site's address is the origin's to send the visitor to.
    const away = await exports.default.fetch(`${SHOP}/elsewhere`, { redirect: 'manual' });
    expect(away.status).toBe(302);
    expect(away.headers.get('location')).toBe('https://pay.example.com/checkout');
  });

  it('moves a cookie the origin sets for its own host to the shop’s host, so the browser keeps it', async () => {
    // The origin is asked on its own host, and a shop that writes its session cookie for the
    // host it was asked on named the origin's: a browser on the shop's host rejects such a
    // cookie, and sign-in or the cart broke behind the Worker.
    const signIn = await exports.default.fetch(`${SHOP}/api/signin`, { method: 'POST' });
    expect(signIn.headers.getSetCookie()).toEqual([
      'shop_session=s1; Domain=127.0.0.1; Path=/; HttpOnly; SameSite=Lax',
      'shop_cart=c1; path=/; Domain=127.0.0.1',
      'shop_region=eu; Path=/; Domain=127.0.0.1',
      // A domain neither host is in was never the origin's to set: passed on as it is.
      'shop_other=x; Path=/; Domain=elsewhere.example',
      'shop_plain=p; Path=/',
    ]);
    // A parent domain the shop's host is in too already reaches it (and its other hosts).
    const onSibling = await exports.default.fetch('http://www.fixture.test/api/signin', { method: 'POST' });
    expect(onSibling.headers.getSetCookie().slice(0, 3)).toEqual([
      'shop_session=s1; Domain=www.fixture.test; Path=/; HttpOnly; SameSite=Lax',
      'shop_cart=c1; path=/; Domain=www.fixture.test',
      'shop_region=eu; Path=/; Domain=fixture.test',
    ]);
  });

  it('passes a WebSocket handshake on to the origin, and the socket carries messages both ways', async () => {
    const res = await exports.default.fetch(`${SHOP}/live`, {
      headers: {
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
        cookie: `attune_aid=${fan}`,
      },
    });
    expect(res.status).toBe(101);
    const socket = res.webSocket;
    if (!socket) throw new Error(`no WebSocket: ${res.status} ${await res.text()}`);
    socket.accept();
    const reply = new Promise<unknown>((resolve) =>
      socket.addEventListener('message', (e) => resolve(e.data)),
    );
    socket.send('in stock?');
    expect(await reply).toBe('echo: in stock?');
    socket.close(1000, 'done');
  });

  it('fetches only the origin, whatever the path: `//host` and `/\\host` stay paths on the origin', async () => {
    for (const path of ['//attacker.fixture.test/steal', '/\\attacker.fixture.test/steal']) {
      const res = await page(path, 'shop_session=SECRET');
      const body = await res.text();
      expect(body).not.toContain('ATTACKER');
      expect(body).not.toContain('SECRET');
      // The origin's own answer for that path (its 404 page).
      expect(res.status).toBe(404);
      expect(res.headers.get('x-origin')).toBe('fixture');
    }
  });

  it('tells the origin the address the edge saw, never the client’s own claim of one', async () => {
    const res = await exports.default.fetch(`${SHOP}/echo-headers`, {
      headers: {
        'cf-connecting-ip': '203.0.113.7',
        'x-forwarded-for': '10.0.0.1',
        forwarded: 'for=10.0.0.1',
        'x-real-ip': '10.0.0.1',
        // A header the client names in Connection is hop-by-hop: it ends at the edge.
        connection: 'x-trace',
        'x-trace': 'hop',
        accept: 'application/json',
      },
    });
    expect(await res.json()).toEqual(
      expect.objectContaining({
        forwardedFor: '203.0.113.7',
        forwarded: null,
        realIp: null,
        xTrace: null,
        accept: 'application/json',
      }),
    );
  });

  it('passes the page on when Connection names something that is no header name (a broken client), not a 500', async () => {
    // Found by src/app.fuzz.test.ts: deleting the header each token names threw on these.
    for (const connection of ['keep-alive, x trace', '"', 'x-trace, a/b, (c)']) {
      const res = await exports.default.fetch(`${SHOP}/echo-headers`, {
        headers: { connection, 'x-trace': 'hop', accept: 'application/json' },
      });
      expect(res.status, connection).toBe(200);
      expect(await res.json()).toEqual(
        expect.objectContaining({ xTrace: connection.startsWith('x-trace') ? null : 'hop' }),
      );
    }
  });

  it('answers 400, not the origin outage’s 502, when the request body ends before its Content-Length', async () => {
    // Found by src/app.fuzz.test.ts: a client gone part-way through its upload was logged and
    // answered as the origin being unreachable.
    const { readable, writable } = new FixedLengthStream(100);
    const writer = writable.getWriter();
    writer
      .write(new TextEncoder().encode('a=1'))
      .then(() => writer.close())
      .catch(() => undefined);
    const res = await exports.default.fetch(`${SHOP}/form`, {
      method: 'POST',
      headers: { 'content-length': '100' },
      body: readable,
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/request body broke off/);
    // A whole body still reaches the origin, with its length.
    const whole = await exports.default.fetch(`${SHOP}/form`, { method: 'POST', body: 'a=1' });
    expect(await whole.text()).toBe('POST a=1 127.0.0.1:8787');
  });

  it('never proxies Attune’s own paths', async () => {
    const res = await exports.default.fetch(`${SHOP}/v1/nothing-here`);
    expect(res.status).toBe(404);
    // Not `not_found`, which the people routes answer for "nothing held about this person".
    expect(await res.json()).toMatchObject({ error: { code: 'no_route' } });
  });
});

describe('first-party Attune under /attune/*', () => {
  it('decides for the person in the attune_aid cookie', async () => {
    const res = await exports.default.fetch(`${SHOP}/attune/decide?slots=hero`, {
      headers: { cookie: `attune_aid=${fan}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(await res.json()).toMatchObject({
      personalized: true,
      decisions: { hero: { variant: 'hero-outdoor' } },
    });
  });

  it('refuses /attune/decide from another origin, even one the site allows: it could not read the answer', async () => {
    const res = await exports.default.fetch(`${SHOP}/attune/decide?slots=hero`, {
      // An allowed origin of site `demo`, but not the page's own.
      headers: { cookie: `attune_aid=${fan}`, origin: ORIGIN_3000 },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      error: { code: 'origin_not_allowed', message: expect.stringContaining('/v1/decide') },
    });
  });

  it('stores the browser’s id and choice as first-party cookies when it accepts a batch', async () => {
    const aid = anonId('cookie');
    const res = await firstPartyCollect([
      makeEvent(aid, 'page.viewed', { consent: consentFor('analytics') }),
      makeEvent(aid, 'page.viewed', { consent: consentFor('analytics', 'personalization') }),
    ]);
    expect(await res.json()).toMatchObject({ accepted: 2 });
    expect(res.status).toBe(200);
    const cookies = res.headers.getSetCookie();
    // The newest event's consent is the choice recorded; the id is the one the events carry.
    expect(cookies).toContain(`attune_aid=${aid}; Path=/; Max-Age=34560000; SameSite=Lax`);
    const choice = cookies.find((c) => c.startsWith('attune_consent='))?.split(';')[0] ?? '';
    expect(JSON.parse(decodeURIComponent(choice.slice('attune_consent='.length)))).toEqual(
      consentFor('analytics', 'personalization'),
    );
  });

  it('expires the id cookie when the batch says consent no longer allows one, and keeps the refusal', async () => {
    const aid = anonId('refused');
    const refusal = consentFor();
    const res = await firstPartyCollect([
      makeEvent(aid, 'consent.updated', { consent: refusal, properties: { ...refusal, source: 'banner' } }),
    ]);
    expect(res.status).toBe(200);
    const cookies = res.headers.getSetCookie();
    expect(cookies).toContain('attune_aid=; Path=/; Max-Age=0; SameSite=Lax');
    expect(cookies.some((c) => c.startsWith('attune_consent=') && !c.includes(aid))).toBe(true);
    expect(cookies.join()).not.toContain(aid);
  });

  it('sets no cookie when the batch is refused or comes from another origin', async () => {
    const aid = anonId('nocookie');
    const events = [makeEvent(aid, 'page.viewed')];
    const unknownKey = await firstPartyCollect(events, { writeKey: 'pk_nobody' });
    expect(unknownKey.status).toBe(401);
    expect(unknownKey.headers.getSetCookie()).toEqual([]);
    const malformed = await exports.default.fetch(`${SHOP}/attune/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: SHOP },
      body: '{"writeKey":',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.getSetCookie()).toEqual([]);
    // An allowed but different origin: the answer is the ingest's, the cookies would not be this site's.
    const crossOrigin = await firstPartyCollect(events, { origin: ORIGIN_3000 });
    expect(crossOrigin.status).toBe(200);
    expect(crossOrigin.headers.getSetCookie()).toEqual([]);
  });

  it('logs an unreachable origin without the page’s URL (its query may name the visitor)', async () => {
    const logged: string[] = [];
    vi.spyOn(console, 'warn').mockImplementation((line: unknown) => logged.push(String(line)));
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      throw new TypeError(`Network connection lost: ${input instanceof Request ? input.url : String(input)}`);
    });
    const res = await page('/account?email=jane%40example.com').finally(() => vi.restoreAllMocks());
    expect(res.status).toBe(502);
    expect(logged.some((line) => line.includes('origin unreachable'))).toBe(true);
    expect(logged.join('\n')).not.toContain('jane');
  });

  it('sets the cookies from the newest event taken, not from one the ingest refused (a 207)', async () => {
    const taken = anonId('taken');
    const refused = anonId('refused');
    const granted = consentFor('analytics', 'personalization');
    // The newest event is refused (a product view without its product id).
    const res = await firstPartyCollect([
      makeEvent(taken, 'page.viewed', { consent: granted }),
      makeEvent(refused, 'product.viewed', { consent: granted, properties: {} }),
    ]);
    expect(res.status).toBe(207);
    const cookies = res.headers.getSetCookie();
    expect(cookies.some((c) => c.startsWith(`attune_aid=${taken};`))).toBe(true);
    expect(cookies.join()).not.toContain(refused);
  });

  it('takes a gzipped batch as /v1/collect does (a server library compresses), with its declared length', async () => {
    const aid = anonId('gzipped');
    const body = JSON.stringify({
      writeKey: WRITE_KEY,
      sentAt: new Date().toISOString(),
      batch: [makeEvent(aid, 'page.viewed')],
    });
    const zipped = await gzip(body);
    const res = await exports.default.fetch(`${SHOP}/attune/collect`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'content-encoding': 'gzip',
        'content-length': String(zipped.byteLength),
        origin: SHOP,
      },
      body: zipped,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 1 });
  });

  it('never writes back the id the site ended at sign-out, however late its events come; a new id gets its cookie', async () => {
    const person = anonymousIdInGroup('signs-out', false);
    await seedPerson(env, `anon:${person}`, { analytics: true, personalization: true }, [
      viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
    ]);
    const browser = cookieJar();
    const granted = consentFor('analytics', 'personalization');
    browser.take(await firstPartyCollect([makeEvent(person, 'page.viewed', { consent: granted })]));
    expect(browser.get('attune_aid')).toBe(person);
    const before = await page('/products/trail-jacket', browser.header());
    expect(slot(await before.text(), 'hero')).toContain('Built for wet trails');

    // The shop's sign-out (through the proxy) expires attune_aid; the SDK reset()s to a new id.
    browser.take(
      await exports.default.fetch(`${SHOP}/api/signout`, {
        method: 'POST',
        headers: { cookie: browser.header() },
      }),
    );
    expect(browser.get('attune_aid')).toBeUndefined();
    // The browser remembers that the id ended, but not the id: the next person at a shared
    // computer could ask for its person's decisions with it.
    expect(browser.get('attune_ended')).toBe(endedDigest(person));
    expect(browser.header()).not.toContain(person);
    // Events of the person who left, still in the SDK's outbox (the flush before sign-out
    // failed, or another tab's), arrive later: they are the person's and are taken…
    const late = await firstPartyCollect([makeEvent(person, 'page.viewed', { consent: granted })], {
      cookie: browser.header(),
    });
    expect(await late.json()).toMatchObject({ accepted: 1 });
    browser.take(late);
    // …but the browser is not theirs any more: no page of it is personalized for them.
    expect(browser.get('attune_aid')).toBeUndefined();
    const after = await page('/products/trail-jacket', browser.header());
    expect(slot(await after.text(), 'hero')).toContain('Origin hero');

    // The browser's new id is stored as any visitor's is.
    const next = anonId('after-signout');
    browser.take(
      await firstPartyCollect([makeEvent(next, 'page.viewed', { consent: granted })], {
        cookie: browser.header(),
      }),
    );
    expect(browser.get('attune_aid')).toBe(next);
  });

  it('does not personalize for an ended id that an answer already on its way wrote back, and drops it', async () => {
    const ended = `attune_ended=${endedDigest(fan)}`;
    const res = await page('/products/trail-jacket', `attune_aid=${fan}; ${ended}`);
    expect(slot(await res.text(), 'hero')).toContain('Origin hero');
    expect(res.headers.getSetCookie()).toContain('attune_aid=; Path=/; Max-Age=0; SameSite=Lax');
    const decide = await exports.default.fetch(`${SHOP}/attune/decide?slots=hero`, {
      headers: { cookie: `attune_aid=${fan}; ${ended}` },
    });
    expect(await decide.json()).toMatchObject({ personalized: false });
  });

  it('takes an origin’s answer as ending the id when it deletes or replaces attune_aid, not when it refreshes it', () => {
    const id = 'browser-1234';
    expect(originEndsId(['attune_aid=; Path=/; Max-Age=0; SameSite=lax'], id)).toBe(true);
    expect(originEndsId([`attune_aid=${id}; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT`], id)).toBe(true);
    expect(originEndsId(['attune_aid=another-browser; Path=/'], id)).toBe(true);
    expect(originEndsId([`attune_aid=${id}; Path=/; Max-Age=34560000`], id)).toBe(false);
    expect(originEndsId([`attune_aid=${id}; Path=/; Max-Age=`], id)).toBe(false);
    expect(originEndsId(['attune_aid_other=; Max-Age=0', 'shop_session=; Max-Age=0'], id)).toBe(false);
  });

  it('serves the SDK script as JavaScript, or says how to build it', async () => {
    const res = await exports.default.fetch(`${SHOP}/attune/attune.js`);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const body = await res.text();
    // Unit runs may happen before `pnpm build`: then the Worker says how to build it, and never 5xx.
    if (res.status === 404) expect(body).toContain('pnpm build');
    else {
      expect(res.status).toBe(200);
      expect(body.length).toBeGreaterThan(1000);
      expect(res.headers.get('cache-control')).toBe('public, max-age=300');
      // Revalidation after max-age costs no body while the script is unchanged.
      const etag = res.headers.get('etag');
      expect(etag).toMatch(/^"[0-9a-z]+-[0-9a-f]{8}"$/);
      // As sent back by browsers: the tag in a list, weakened (compressed on the way), or `*`.
      for (const ifNoneMatch of [`W/"0", ${etag}`, `W/${etag}`, '*']) {
        const again = await exports.default.fetch(`${SHOP}/attune/attune.js`, {
          headers: { 'if-none-match': ifNoneMatch },
        });
        expect(again.status).toBe(304);
        expect(again.headers.get('etag')).toBe(etag);
        expect(await again.text()).toBe('');
      }
      const changed = await exports.default.fetch(`${SHOP}/attune/attune.js`, {
        headers: { 'if-none-match': '"0"' },
      });
      expect(changed.status).toBe(200);
      expect(await changed.text()).toBe(body);
    }
  });
});

describe('first-party collect: the cookies follow what the edge granted, not what the batch claims', () => {
  afterEach(async () => {
    // withCategoryDisabled drops the configuration it put in force: the built-ins are held again.
    await holdBuiltInConsentConfig(env);
  });
  /** A same-origin collect from an address of its own: the file's other tests share the default one's rate limit. */
  const collectFrom = (batch: CustomerAction[], headers: Record<string, string> = {}) =>
    exports.default.fetch(`${SHOP}/attune/collect`, {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        origin: SHOP,
        'cf-connecting-ip': '198.51.100.20',
        ...headers,
      },
      body: JSON.stringify({ writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch }),
    });
  const cookieOf = (res: Response, name: string) =>
    res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  const EXPIRED = 'attune_aid=; Path=/; Max-Age=0; SameSite=Lax';

  it('stores no id from a tab still sending under the policy before a marketer’s change (the edge drops its events)', async () => {
    await withCategoryDisabled(env, 'demo', 'marketing', async () => {
      const aid = anonId('old-policy');
      const res = await collectFrom([
        makeEvent(aid, 'page.viewed', { consent: consentFor('analytics', 'personalization') }),
      ]);
      expect(await res.json()).toMatchObject({ accepted: 0, dropped: 1 });
      expect(cookieOf(res, 'attune_aid')).toBe(EXPIRED);
      // Nor is the old choice written as the visitor's: under the new policy they have not chosen.
      expect(cookieOf(res, 'attune_consent')).toBeUndefined();
    });
  });

  it('stores no id for a claim of a category the site has disabled, and records the choice as granted', async () => {
    await withCategoryDisabled(env, 'demo', 'analytics', async () => {
      const aid = anonId('disabled');
      const claim = { ...consentFor('analytics'), policyVersion: '1.no-analytics' };
      const res = await collectFrom([makeEvent(aid, 'page.viewed', { consent: claim })]);
      expect(await res.json()).toMatchObject({ accepted: 0 });
      expect(cookieOf(res, 'attune_aid')).toBe(EXPIRED);
      const choice = cookieOf(res, 'attune_consent')?.split(';')[0] ?? '';
      expect(JSON.parse(decodeURIComponent(choice.slice('attune_consent='.length)))).toMatchObject({
        categories: { analytics: false },
        policyVersion: '1.no-analytics',
      });
    });
  });

  it('stores no id again for an erased browser whose late events its tombstone drops', async () => {
    const aid = anonId('erased-late');
    const granted = consentFor('analytics', 'personalization');
    const first = await collectFrom([makeEvent(aid, 'page.viewed', { consent: granted })]);
    expect(cookieOf(first, 'attune_aid')).toBe(`attune_aid=${aid}; Path=/; Max-Age=34560000; SameSite=Lax`);
    const erasure = await exports.default.fetch(`${SHOP}/v1/people/anon:${aid}?site=demo`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer test-admin-token' },
    });
    expect(erasure.status).toBe(200);
    const late = await collectFrom([makeEvent(aid, 'page.viewed', { consent: granted })]);
    expect(await late.json()).toMatchObject({ accepted: 0 });
    expect(cookieOf(late, 'attune_aid')).toBe(EXPIRED);
  });

  it('stores the id again when a retried batch is answered as duplicates (its first answer was lost)', async () => {
    const aid = anonId('retried');
    const batch = [makeEvent(aid, 'page.viewed', { consent: consentFor('analytics') })];
    await (await collectFrom(batch)).arrayBuffer();
    const retry = await collectFrom(batch);
    expect(await retry.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(cookieOf(retry, 'attune_aid')).toBe(`attune_aid=${aid}; Path=/; Max-Age=34560000; SameSite=Lax`);
  });

  it('records marketing off under Sec-GPC, and stores no id for marketing alone', async () => {
    const aid = anonId('gpc-only-marketing');
    const choice = consentFor('marketing');
    const res = await collectFrom(
      [makeEvent(aid, 'consent.updated', { consent: choice, properties: { ...choice, source: 'banner' } })],
      { 'sec-gpc': '1' },
    );
    expect(res.status).toBe(200);
    const cookie = cookieOf(res, 'attune_consent')?.split(';')[0] ?? '';
    expect(JSON.parse(decodeURIComponent(cookie.slice('attune_consent='.length))).categories).toMatchObject({
      marketing: false,
    });
    expect(cookieOf(res, 'attune_aid')).toBe(EXPIRED);
  });
});

describe('edge proxy: the product a slot names is a source of "viewed next"', () => {
  // Shoppers on the tent went on to the travel mug, which nothing in the fan's profile would
  // pick. Each test counts them itself, so that each runs alone.
  const viewedAfterTent = () =>
    applyCovisits(env, [
      {
        messageId: 'proxy-covisits-tent',
        visits: ['travel-mug', 'travel-mug', 'camp-stove'].map((to) => ({
          kind: 'covisit' as const,
          siteId: 'demo',
          from: 'tent-2p',
          to,
          at: new Date().toISOString(),
        })),
      },
    ]);

  it('recommends what people viewed after the product of data-attune-product, on a path that names none', async () => {
    await viewedAfterTent();
    clearCovisitCache();
    const res = await page('/p/tent', `attune_aid=${fan}`);
    const recs = slot(await res.text(), 'recommendations') ?? '';
    expect(recs).not.toContain('Origin picks');
    expect(recs).toMatch(
      /data-product-id="travel-mug"[\s\S]*?people who viewed Two-Person Tent viewed this next/,
    );
  });

  it('fills the slot at once when the page reaches it after the deadline (a slow origin), and reads the counts for the next page', async () => {
    await viewedAfterTent();
    // A returning fan: one earlier page of theirs through the app, made here so that the test
    // does not rely on the test above (alone, without it, the slot kept the origin's picks:
    // a page decided past its deadline waits for nothing this isolate does not hold yet).
    await (await page('/p/tent', `attune_aid=${fan}`)).arrayBuffer();
    clearCovisitCache();
    const ready = await prepareDecision(env, {
      siteId: 'demo',
      personKey: `anon:${fan}`,
      anonymousId: fan,
      slots: [],
      budgetMs: 2000,
    });
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, { prepare: async () => ready });
    const tentPage = async () => {
      const ctx = createExecutionContext();
      // A budget of 0: the deadline has passed before the origin's first byte. The origin takes
      // 1.2 s, as a slow one does: the decision (behind the IP limit's lease, which may wait up
      // to 1 s on another request's call) is ready when the page reaches the slot. Answering at
      // once, the fixture raced that lease, and lost it now and then under a loaded CI.
      const res = await app.fetch(
        new Request(`${SHOP}/p/tent?wait=1200`, {
          headers: { accept: 'text/html', cookie: `attune_aid=${fan}` },
        }),
        { ...env, DECISION_BUDGET_MS: '0' },
        ctx,
      );
      const recs = slot(await res.text(), 'recommendations') ?? '';
      await waitOnExecutionContext(ctx);
      return recs;
    };
    const first = await tentPage();
    expect(first).not.toContain('Origin picks');
    expect(first).toContain('class="card"');
    // The read made after the first page is in the isolate's cache for the next one.
    expect(await tentPage()).toMatch(/people who viewed Two-Person Tent viewed this next/);
  });
});

describe('rewriteSlots on awkward markup', () => {
  const run = async (source: string) =>
    rewriteSlots(
      new Response(source, { headers: { 'content-type': 'text/html' } }),
      () => ({ html: '<i>new</i>', variant: 'v', decisionId: 'd' }),
      { deadline: Date.now() + 1000 },
    ).text();

  it('replaces nested default content and comments of a closed slot', async () => {
    expect(
      await run('<div data-attune-slot="a">x <b title=\'q"&amp;\'>y<br></b><!-- c --></div><p>after</p>'),
    ).toBe(
      '<div data-attune-slot="a" data-attune-variant="v" data-attune-decision="d"><i>new</i></div><p>after</p>',
    );
  });

  it('leaves a void slot element alone', async () => {
    expect(await run('<img data-attune-slot="a" src="/x.png"><p>after</p>')).toBe(
      '<img data-attune-slot="a" src="/x.png"><p>after</p>',
    );
  });
});

describe('edge proxy: a mistaken ORIGIN_URL is reported, not silent', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const errorsOf = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((call) => String(call[0]));

  it('an origin without a scheme turns edge-proxy mode off and says so once, not per request', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const app = createApp();
    const bindings = { ...env, ORIGIN_URL: 'origin.fixture.test' };
    for (const path of ['/products/trail-jacket', '/cart']) {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${SHOP}${path}`, { headers: { accept: 'text/html' } }),
        bindings,
        ctx,
      );
      expect(res.status).toBe(404);
      await waitOnExecutionContext(ctx);
    }
    const lines = errorsOf(errors).filter((line) => line.includes('config.origin_url'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('ORIGIN_URL is not an http(s) URL');
  });

  it('a base path is reported as ignored, and pages are still served from the origin root', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const app = createApp();
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`${SHOP}/products/trail-jacket`, { headers: { accept: 'text/html' } }),
      { ...env, ORIGIN_URL: `${ORIGIN}/store?x=1` },
      ctx,
    );
    expect(await res.text()).toBe(await originText('/products/trail-jacket'));
    await waitOnExecutionContext(ctx);
    expect(errorsOf(errors).join('\n')).toContain("ORIGIN_URL's path, query and fragment are ignored");
  });

  it('a root origin is not reported', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const ctx = createExecutionContext();
    await jacketPage(createApp(), fan, ctx);
    await waitOnExecutionContext(ctx);
    expect(errorsOf(errors).filter((line) => line.includes('config.origin_url'))).toEqual([]);
  });
});

describe('edge proxy: two sites behind one Worker', () => {
  const idCookie = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith('attune_aid='));
  const OTHER = 'http://other.test';
  const twoShops = {
    ...env,
    ATTUNE_SITES: JSON.stringify([
      { id: 'demo', writeKey: 'pk_demo_attune', allowedOrigins: [SHOP] },
      { id: 'other', writeKey: 'pk_other_attune', allowedOrigins: [OTHER] },
    ]),
    ATTUNE_SITE_SECRETS: JSON.stringify({
      demo: { identitySecret: 'test-identity-secret', serverKey: 'sk_test_server_key' },
      other: { identitySecret: 'other-identity-secret', serverKey: 'sk_other_server_key' },
    }),
  };

  it("one site's remembered cookie verdict for an id never refreshes that id's cookie on another site", async () => {
    // The same id on both shops (a copied cookie, or a browser id a script names).
    const shared = anonymousIdInGroup('same-id-two-shops', false);
    const consented = await fansJacketDecision();
    const app = new Hono<AppEnv>();
    mountEdgeProxy(app, {
      // On the other shop the id's person granted storage; on the demo shop the decision never comes.
      prepare: async (_env, site) =>
        site.id === 'other' ? consented : new Promise<PreparedDecision | null>(() => undefined),
    });
    const ctx = createExecutionContext();
    const onOther = await app.fetch(
      new Request(`${OTHER}/products/trail-jacket`, {
        headers: { accept: 'text/html', cookie: `attune_aid=${shared}` },
      }),
      twoShops,
      ctx,
    );
    await onOther.text();
    await waitOnExecutionContext(ctx);
    const onDemo = await jacketPage(app, shared, createExecutionContext(), {
      ...twoShops,
      DECISION_BUDGET_MS: '0',
    });
    await onDemo.text();
    // Before, the other shop's grant (kept per id, not per site) refreshed the demo shop's
    // cookie for a year although nothing on the demo shop granted it.
    expect(idCookie(onDemo) ?? 'no cookie').toBe('no cookie');
  });
});
