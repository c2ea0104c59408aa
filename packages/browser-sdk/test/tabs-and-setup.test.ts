/**
 * The script tag in real Chromium (dist/attune.js): open tabs follow each other's consent
 * choices and sign-outs; a tag without data-endpoint still replaces its stub; an endpoint the
 * browser may not read is reported to `onError` (npm build).
 * Ports 19210 (site) and 19211 (collector).
 */
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { tagStarted } from './chromium.ts';
import { until } from './servers.ts';
import { browserSuite } from './suite.ts';

declare global {
  interface Window {
    attune: import('../src/attune.ts').Attune;
  }
}

const suite = browserSuite(19210, 19211);

async function open(path: string, params: Record<string, string> = {}): Promise<Page> {
  const tab = await suite.context.newPage();
  await tab.goto(`${suite.site.url}${path}?${new URLSearchParams(params)}`);
  await tagStarted(tab);
  return tab;
}

const named = suite.named;

describe('the script tag in Chromium: tabs that follow each other, a tag without an endpoint', () => {
  it('a withdrawal in one tab is not undone by another open tab', async () => {
    const first = await open('/w1', { 'data-flush-interval': '100' });
    await first.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    await until('the grant', () => named('consent.updated').length === 1);
    // A second tab of the shop, opened after the grant.
    const second = await open('/w2', { 'data-flush-interval': '100' });
    await until('its page view', () => named('page.viewed').length === 2);
    // The visitor withdraws in the first tab (the site's privacy settings).
    await first.evaluate(() => window.attune.consent.set({ analytics: false }, 'preferences'));
    await until('the withdrawal', () => named('consent.updated').length === 2);
    // The second tab is still open and the visitor keeps browsing in it.
    await second.evaluate(() => window.attune.track('product.viewed', { productId: 'after-withdrawal' }));
    await second.waitForTimeout(500);
    expect.soft(named('product.viewed')).toEqual([]);
    // The next page the visitor opens knows the withdrawal: no id stored, nothing granted.
    const third = await open('/w3', { 'data-flush-interval': '100' });
    expect.soft(await third.evaluate(() => window.attune.consent.get().categories.analytics)).toBe(false);
    const record = await third.evaluate(() => JSON.parse(localStorage.getItem('attune') ?? '{}'));
    expect.soft(record.anonymousId).toBeUndefined();
  });

  it('a sign-out (reset) in one tab is not undone by another open tab', async () => {
    const first = await open('/s1', { 'data-flush-interval': '100' });
    await first.evaluate(() => {
      window.attune.consent.set({ personalization: true }, 'banner');
      window.attune.identify('user-7', {}, { signature: 'c'.repeat(64) });
    });
    await until('the identify', () => named('user.identified').length === 1);
    const second = await open('/s2', { 'data-flush-interval': '100' });
    // The second tab hears of the sign-out by a storage event, which a loaded machine delivers
    // late: wait for that one (the tag's own listener, added at load, runs before this one), not
    // for any: a late event of the first tab's earlier writes, which still name the user, would
    // let this tab act before it knows of the sign-out.
    await second.evaluate(() => {
      const tab = window as unknown as { followed?: Promise<boolean> };
      tab.followed = new Promise((resolve) =>
        addEventListener('storage', (event) => {
          if (event.key === 'attune' && !(event.newValue ?? '').includes('"userId"')) resolve(true);
        }),
      );
    });
    await first.evaluate(() => window.attune.reset());
    await second.evaluate(() => (window as unknown as { followed?: Promise<boolean> }).followed);
    await second.evaluate(() => window.attune.track('product.viewed', { productId: 'after-sign-out' }));
    await until('the event after sign-out', () => named('product.viewed').length === 1);
    expect.soft(named('product.viewed')[0]?.userId).toBeUndefined();
    const third = await open('/s3', { 'data-flush-interval': '100' });
    const record = await third.evaluate(() => JSON.parse(localStorage.getItem('attune') ?? '{}'));
    expect(record.userId).toBeUndefined();
  });

  it('another person signing in without a sign-out in between gets a browser id of their own, kept for the next page', async () => {
    const first = await open('/switch-1', { 'data-flush-interval': '100' });
    await first.evaluate(() => {
      window.attune.consent.set({ personalization: true }, 'banner');
      window.attune.identify('user-a', {}, { signature: 'a'.repeat(64) });
    });
    await until('the first sign-in', () => named('user.identified').length === 1);
    await first.evaluate(() => window.attune.identify('user-b', {}, { signature: 'b'.repeat(64) }));
    await until('the second sign-in', () => named('user.identified').length === 2);
    const [a, b] = named('user.identified');
    expect.soft(b?.userId).toBe('user-b');
    expect.soft(b?.anonymousId).not.toBe(a?.anonymousId);
    const next = await open('/switch-2', { 'data-flush-interval': '100' });
    const record = await next.evaluate(() => JSON.parse(localStorage.getItem('attune') ?? '{}'));
    expect(record).toMatchObject({ userId: 'user-b', anonymousId: b?.anonymousId });
  });

  it('a tag without data-endpoint, or with an empty one (a blank template variable), still replaces the stub (the page’s consent banner keeps working)', async () => {
    for (const [path, endpoint] of [
      ['/no-endpoint', ''],
      ['/empty-endpoint', ' data-endpoint=""'],
    ]) {
      const page = await suite.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.route(`${suite.site.url}${path}`, (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><html><head><script>window.attune={q:[],consent:{}}</script>
<script src="/attune.js" data-write-key="pk_test"${endpoint}></script></head><body></body></html>`,
        }),
      );
      await page.goto(`${suite.site.url}${path}`);
      await page.waitForTimeout(300);
      expect(errors, path).toEqual([]);
      expect(await page.evaluate(() => typeof window.attune.consent.get), path).toBe('function');
      await page.close();
    }
  });

  it('a page element with id="attune" (named access makes it window.attune) stops neither the stub snippet nor the tag', async () => {
    for (const params of <Record<string, string>[]>[
      {
        head: '<meta id="attune">',
        stub: "attune.consent.set({ analytics: true }, 'banner'); attune.track('stub.called')",
      },
      { head: '<link id="attune">' },
    ]) {
      suite.collector.reset();
      const page = await suite.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(
        `${suite.site.url}/named?${new URLSearchParams({ ...params, 'data-flush-interval': '100' })}`,
      );
      await page.waitForFunction(() => typeof window.attune.anonymousId === 'function', undefined, {
        timeout: 10_000,
      });
      await page.evaluate(() => {
        window.attune.consent.set({ analytics: true }, 'banner');
        window.attune.track('tag.called');
      });
      await until('the tag’s event', () => named('tag.called').length === 1);
      expect(named('stub.called'), params.head).toHaveLength('stub' in params ? 1 : 0);
      expect(errors, params.head).toEqual([]);
      await page.close();
    }
  });

  it('a click on a tracked label is one event, not two (the browser clicks its checkbox as well), and one also when no second click follows', async () => {
    const label = (list: string, control: string) =>
      `<label id="${list}" data-attune-track="newsletter.toggled" data-attune-prop-list="${list}">${control} <span>${list} news</span></label>`;
    const page = await open('/label', {
      'data-flush-interval': '100',
      body: [
        label('weekly', '<input type="checkbox" id="weekly-box">'),
        // No click on the control follows: it is disabled, or the page prevents the label's default.
        label('disabled', '<input type="checkbox" disabled>'),
        label('prevented', '<input type="checkbox">'),
        `<script>document.getElementById('prevented').addEventListener('click', (e) => e.preventDefault())</script>`,
      ].join(''),
    });
    await page.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    await page.click('#weekly span');
    await page.click('#weekly-box');
    // The checkbox was toggled twice: the label's click reached it.
    expect(await page.isChecked('#weekly-box')).toBe(false);
    // (Playwright waits for a disabled control's label to be enabled: clicked as a person would.)
    await page.click('#disabled span', { force: true });
    await page.click('#prevented span');
    await page.evaluate(() => window.attune.track('marker.reached'));
    await page.evaluate(() => window.attune.flush());
    await until('the marker', () => named('marker.reached').length === 1);
    expect(named('newsletter.toggled').map((e) => e.properties)).toEqual([
      { list: 'weekly' },
      { list: 'weekly' },
      { list: 'disabled' },
      { list: 'prevented' },
    ]);
  });

  it('a page back from the back/forward cache follows a sign-out made in another tab meanwhile: its page view names no one, and the sign-out stays', async () => {
    const first = await open('/bf-signed-in', { 'data-flush-interval': '100' });
    await first.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    await first.evaluate((signature) => window.attune.identify('user-7', {}, { signature }), 'c'.repeat(64));
    await until('the sign-in', () => named('user.identified').length === 1);
    await first.evaluate(() => {
      addEventListener('pageshow', (event) => {
        document.body.dataset.restored = String(event.persisted);
      });
    });
    await first.goto(`${suite.site.url}/bf-next?data-flush-interval=100`);
    await tagStarted(first);
    // Signed out in another tab while the first page sleeps in the cache.
    const second = await open('/bf-other', { 'data-flush-interval': '100' });
    await second.evaluate(() => window.attune.reset());
    const stored = (page: Page) => page.evaluate(() => localStorage.getItem('attune') ?? '');
    await until('the sign-out stored', async () => !(await stored(second)).includes('user-7'));
    await first.goBack({ waitUntil: 'commit' });
    await first.waitForFunction(() => document.body.dataset.restored !== undefined);
    expect(await first.evaluate(() => document.body.dataset.restored)).toBe('true');
    const views = () =>
      named('page.viewed')
        .filter((e) => e.context?.page?.path === '/bf-signed-in')
        .sort((a, b) => (a.id < b.id ? -1 : 1));
    await until('the restored page’s view', () => views().length === 2);
    expect(views()[1]?.userId).toBeUndefined();
    await first.evaluate(() => window.attune.flush());
    expect(await stored(first)).not.toContain('user-7');
  });

  it('an endpoint whose answers the browser hides (no CORS for this origin) is reported to onError as unreachable', async () => {
    const page = await suite.context.newPage();
    // The site's own server under another host name: it answers /v1/collect without CORS
    // headers, as the Worker answers an origin missing from the site's allowedOrigins.
    const foreign = suite.site.url.replace('127.0.0.1', 'localhost');
    await page.route(`${suite.site.url}/attune.mjs`, async (route) =>
      route.fulfill({
        contentType: 'text/javascript',
        body: await readFile(new URL('../dist/attune.mjs', import.meta.url), 'utf8'),
      }),
    );
    await page.route(`${suite.site.url}/unreachable`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html><head><script type="module">
import { createAttune } from '/attune.mjs';
window.reported = [];
const attune = createAttune({ endpoint: '${foreign}', writeKey: 'pk_test', onError: (e) => window.reported.push(e) });
attune.consent.set({ analytics: true });
attune.flush();
</script></head><body></body></html>`,
      }),
    );
    await page.goto(`${suite.site.url}/unreachable`);
    // Three tries: the first at once, then full-jitter backoff of at most 1 s and 2 s.
    await page.waitForFunction(
      () => (window as unknown as { reported: unknown[] }).reported.length > 0,
      null,
      {
        timeout: 15_000,
      },
    );
    expect(await page.evaluate(() => (window as unknown as { reported: unknown[] }).reported)).toEqual([
      { code: 'unreachable', message: `no answer from ${foreign}/v1/collect` },
    ]);
    await page.close();
  });
});
