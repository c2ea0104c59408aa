/**
 * The script-tag build (dist/attune.js) in real headless Chromium, served from a
 * loopback site and sending to a loopback collector that validates every body with the
 * shared schema (the fixture is in suite.ts). Each test gets a fresh browser context.
 */
import type { CustomerAction } from '@attune/shared-schema';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { restoredFromCache, tagStarted } from './chromium.ts';
import { until } from './servers.ts';
import { browserSuite } from './suite.ts';

const SIGNATURE = 'c'.repeat(64);

declare global {
  interface Window {
    attune: import('../src/attune.ts').Attune;
  }
}

const suite = browserSuite(19110, 19111);

/** Opens a test page and waits until the tag has replaced the stub. */
async function open(path: string, params: Record<string, string> = {}, page?: Page): Promise<Page> {
  const tab = page ?? (await suite.context.newPage());
  await tab.goto(`${suite.site.url}${path}?${new URLSearchParams(params)}`);
  await tagStarted(tab);
  return tab;
}

const named = suite.named;
const countOf = (id: string) => suite.collector.events.filter((e) => e.id === id).length;
/** Events that reached the collector more than once (it keeps the first, like the Worker). */
const resent = () => suite.collector.duplicates.map((e) => e.name);
const grant = (page: Page, categories: Record<string, boolean> = { analytics: true }) =>
  page.evaluate((c) => window.attune.consent.set(c, 'banner'), categories);
const flush = (page: Page) => page.evaluate(() => window.attune.flush());
/** Ids of the events the page's IndexedDB outbox holds (none when it does not exist). */
const storedIds = (page: Page) =>
  page.evaluate(async () => {
    if (!(await indexedDB.databases()).some((db) => db.name === 'attune')) return [];
    return new Promise<string[]>((resolve, reject) => {
      const request = indexedDB.open('attune');
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        const db = request.result;
        const all = db.transaction('outbox').objectStore('outbox').getAllKeys();
        all.onsuccess = () => {
          db.close();
          resolve(all.result.map(String));
        };
      };
    });
  });

/** No event was sent twice on the wire. */
function expectNoDuplicates() {
  expect(resent()).toEqual([]);
}

describe('the script tag in Chromium', () => {
  it('(a) makes no network request at all and writes no storage before consent', async () => {
    const requests: string[] = [];
    suite.context.on('request', (request) => requests.push(request.url()));
    const page = await open('/a', { 'data-flush-interval': '100' });
    await page.evaluate(() => {
      window.attune.track('product.viewed', { productId: 'p1' });
      window.attune.identify('u1', { plan: 'pro' }, { signature: 'c'.repeat(64) });
      document.querySelector<HTMLButtonElement>('#add')?.click();
      return window.attune.flush();
    });
    // Absence needs a span of time: ten flush intervals.
    await page.waitForTimeout(1000);
    expect(requests.filter((url) => !url.startsWith(suite.site.url))).toEqual([]);
    expect(suite.collector.requests).toEqual([]);
    const storage = await page.evaluate(async () => ({
      localStorage: localStorage.length,
      cookie: document.cookie,
      databases: (await indexedDB.databases()).length,
    }));
    expect(storage).toEqual({ localStorage: 0, cookie: '', databases: 0 });
    expect(await page.evaluate(() => window.attune.consent.get().decided)).toBe(false);
    // The tag defines no global but window.attune: compare with a fresh same-origin window.
    const globals = await page.evaluate(() => {
      const frame = document.body.appendChild(document.createElement('iframe'));
      const fresh = new Set(Object.getOwnPropertyNames(frame.contentWindow));
      // (Indexed names are the frame itself.)
      return Object.getOwnPropertyNames(window).filter((name) => !fresh.has(name) && !/^\d+$/.test(name));
    });
    expect(globals).toEqual(['attune']);
  });

  it('(b) after granting analytics, the waiting events arrive batched, as text/plain without preflight', async () => {
    const page = await open('/b', { 'data-flush-at': '5', 'data-flush-interval': '60000' });
    await page.evaluate(() => {
      window.attune.track('product.viewed', { productId: 'p1' });
      document.querySelector<HTMLButtonElement>('#add span')?.click();
    });
    await grant(page);
    // page.viewed + product.viewed + cart.item.added (click) + consent.updated = 4 < flushAt: still queued.
    await page.evaluate(() => window.attune.track('search.performed', { query: 'boots' }));
    await until('a batch of five', () => suite.collector.events.length >= 5);
    const posts = suite.collector.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]?.events.map((e) => e.name)).toEqual([
      'page.viewed',
      'product.viewed',
      'cart.item.added',
      'consent.updated',
      'search.performed',
    ]);
    expect(posts[0]?.contentType).toMatch(/^text\/plain/);
    expect(suite.collector.requests.some((r) => r.method === 'OPTIONS')).toBe(false);
    const click = named('cart.item.added')[0];
    expect(click?.properties).toEqual({ productId: 'p-7', name: 'Trail jacket' });
    for (const event of suite.collector.events) {
      expect(event.context?.consent).toEqual({
        categories: { necessary: true, analytics: true, personalization: false, marketing: false },
        policyVersion: '1',
      });
    }
    expect(named('page.viewed')[0]?.context?.page).toMatchObject({ path: '/b', title: 'Test /b' });
  });

  it('(c) navigating away delivers the last events, once', async () => {
    const page = await open('/c', { 'data-flush-interval': '60000' });
    await grant(page);
    await flush(page);
    await page.evaluate(() => {
      window.attune.track('checkout.started', { value: 42, currency: 'EUR' });
      window.attune.track('form.submitted', { formId: 'newsletter' });
    });
    await page.goto(`${suite.site.url}/elsewhere?data-auto-page-view=false`);
    await until('the last events', () => named('form.submitted').length >= 1);
    expect(named('checkout.started')).toHaveLength(1);
    // Coming back must not send them again from storage.
    await open('/c', {}, page);
    await until('the new page view', () => named('page.viewed').length === 2);
    await flush(page);
    expect(named('form.submitted')).toHaveLength(1);
    expectNoDuplicates();
  });

  it('(d) offline, reload, back online: delivered exactly once', async () => {
    const page = await open('/d', { 'data-flush-interval': '200' });
    await grant(page);
    await until('the consent event', () => named('consent.updated').length === 1);
    await suite.context.setOffline(true);
    const offlineIds = await page.evaluate(() => {
      for (let i = 0; i < 3; i++) window.attune.track('product.viewed', { productId: `offline-${i}` });
      return window.attune.flush();
    });
    void offlineIds;
    await until('three events in IndexedDB', async () => (await storedIds(page)).length === 3);
    const stored = await storedIds(page);
    await page.reload().catch(() => {}); // fails: the browser is offline
    await suite.context.setOffline(false);
    await open('/d', {}, page);
    await until('the offline events', () => stored.every((id) => countOf(id) >= 1));
    await until('the outbox to empty', async () => (await storedIds(page)).length === 0);
    await flush(page);
    // Accepted exactly once. On the wire, the page the reload replaced may have sent them as the
    // network came back, with the answer lost to the navigation: the id makes that resend harmless.
    for (const id of stored) expect(countOf(id)).toBe(1);
    expect(suite.collector.duplicates.every((e) => stored.includes(e.id))).toBe(true);
  });

  it('(e) a burst of 503s, then recovery: all delivered, none twice', async () => {
    const page = await open('/e', { 'data-flush-interval': '100' });
    suite.collector.fail(2, 503);
    suite.collector.fail(1, 429, '1');
    await grant(page);
    await page.evaluate(() => {
      for (let i = 0; i < 5; i++) window.attune.track('product.viewed', { productId: `burst-${i}` });
    });
    await until('every event', () => suite.collector.events.length === 7);
    const failed = suite.collector.requests.filter((r) => r.method === 'POST' && r.events.length === 0);
    expect(failed.length).toBeGreaterThanOrEqual(3);
    await flush(page);
    expect(suite.collector.events).toHaveLength(7);
    expectNoDuplicates();
  });

  it('(f) two tabs, and the events of a tab closed offline: no duplicates', async () => {
    const first = await open('/f1', { 'data-flush-interval': '100' });
    await grant(first);
    const second = await open('/f2', { 'data-flush-interval': '100' });
    const third = await open('/f3', { 'data-flush-interval': '100' });
    for (const tab of [first, second, third]) {
      await tab.evaluate(() => {
        for (let i = 0; i < 5; i++)
          window.attune.track('product.viewed', { productId: `${location.pathname}-${i}` });
      });
    }
    await until('every tab’s events', () => suite.collector.events.length === 1 + 3 + 15);
    await suite.context.setOffline(true);
    await first.evaluate(() => {
      for (let i = 0; i < 4; i++) window.attune.track('cart.item.added', { productId: `orphan-${i}` });
    });
    await until('the orphans in IndexedDB', async () => (await storedIds(first)).length === 4);
    await first.close();
    // Both remaining tabs see `online` at once and race to adopt the closed tab's events.
    await suite.context.setOffline(false);
    await until('the orphans', () => named('cart.item.added').length >= 4);
    await Promise.all([flush(second), flush(third)]);
    await second.waitForTimeout(500);
    expect(named('cart.item.added')).toHaveLength(4);
    expect(suite.collector.events).toHaveLength(1 + 3 + 15 + 4);
    expectNoDuplicates();
  });

  it('(g) a refusal discards the buffered events and stores no id', async () => {
    const page = await open('/g', { 'data-flush-interval': '100' });
    await page.evaluate(() => window.attune.track('product.viewed', { productId: 'secret' }));
    await grant(page, { analytics: false, personalization: false, marketing: false });
    await until('the proof of refusal', () => named('consent.updated').length === 1);
    await page.evaluate(() => {
      window.attune.track('product.viewed', { productId: 'after' });
      return window.attune.flush();
    });
    await page.waitForTimeout(500);
    expect(suite.collector.events.map((e) => e.name)).toEqual(['consent.updated']);
    expect(named('consent.updated')[0]?.properties).toMatchObject({
      categories: { necessary: true, analytics: false, personalization: false, marketing: false },
    });
    const storage = await page.evaluate(async () => ({
      record: JSON.parse(localStorage.getItem('attune') ?? '{}'),
      databases: (await indexedDB.databases()).length,
      cookie: document.cookie,
    }));
    expect(Object.keys(storage.record)).toEqual(['consent']);
    expect(storage).toMatchObject({ databases: 0, cookie: '' });
  });

  it('(g2) a withdrawal the collector could not take reaches it from the next page', async () => {
    const page = await open('/g2', { 'data-flush-interval': '200' });
    await grant(page);
    await until('the grant', () => named('consent.updated').length === 1);
    // The Worker is down when the person withdraws, and asks for a minute: the tab waits, and
    // sends no beacon as the page goes (not while backing off). (Not the browser's emulated
    // offline: it did not stop every send on this machine.)
    suite.collector.fail(1, 503, '60');
    await grant(page, { analytics: false, personalization: false, marketing: false });
    const refused = () =>
      suite.collector.requests.filter((r) => r.method === 'POST' && r.events.length === 0);
    await until('the refused send', () => refused().length === 1);
    const record = () => page.evaluate(() => JSON.parse(localStorage.getItem('attune') ?? '{}'));
    // IndexedDB keeps nothing after a refusal: its proof waits in the visitor record.
    await until('the proof kept with the refusal', async () => (await record()).proofs?.length === 1);
    expect(named('consent.updated')).toHaveLength(1);
    await open('/g2', {}, page);
    await until('the refusal', () => named('consent.updated').length === 2);
    expect(refused()).toHaveLength(1);
    expect(named('consent.updated')[1]?.properties).toMatchObject({
      categories: { analytics: false, personalization: false, marketing: false },
    });
    await until(
      'the record to hold the choice alone',
      async () => Object.keys(await record()).join() === 'consent',
    );
    expectNoDuplicates();
  });

  it('(h) the stub snippet queues calls made before the tag loads and replays them in order', async () => {
    const calls = [
      "attune.consent.set({ analytics: true, personalization: true }, 'banner')",
      "attune.track('stub.first', { n: 1 })",
      `attune.identify('user-7', { plan: 'pro' }, { signature: '${SIGNATURE}' })`,
      "attune.track('stub.second', { n: 2 })",
      'attune.flush()',
    ].join(';');
    await open('/h', { stub: calls });
    await until('the replayed calls', () => named('stub.second').length === 1);
    const sequence = [...suite.collector.events].sort((a, b) => (a.id < b.id ? -1 : 1)).map((e) => e.name);
    expect(sequence).toEqual([
      'page.viewed',
      'consent.updated',
      'stub.first',
      'user.identified',
      'stub.second',
    ]);
    expect(named('stub.second')[0]).toMatchObject({ userId: 'user-7', userIdSignature: SIGNATURE });
    expect(named('stub.first')[0]?.userId).toBeUndefined();
  });

  it('(i) single-page apps: page views on history changes, with the previous page as referrer', async () => {
    const page = await open('/spa/one', { 'data-spa-page-views': '', 'data-flush-interval': '100' });
    await grant(page);
    await page.evaluate(() => history.pushState({}, '', '/spa/two?tab=reviews'));
    await page.evaluate(() => history.replaceState({}, '', '/spa/two?tab=reviews#top'));
    await page.evaluate(() => history.back());
    await until('three page views', () => named('page.viewed').length === 3);
    const views = named('page.viewed')
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((e: CustomerAction) => ({ path: e.context?.page?.path, referrer: e.context?.page?.referrer }));
    expect(views[1]).toEqual({ path: '/spa/two', referrer: expect.stringMatching(/\/spa\/one\?/) });
    expect(views[2]).toEqual({ path: '/spa/one', referrer: `${suite.site.url}/spa/two?tab=reviews#top` });
    await flush(page);
    expect(named('page.viewed')).toHaveLength(3);
  });

  it('(i2) single-page apps: a route change that sets its title after pushState and adds a query with replaceState is one page view, with the new title; taking the query out again is none', async () => {
    const page = await open('/spa/list', { 'data-spa-page-views': '', 'data-flush-interval': '100' });
    await grant(page);
    // What routers do in one task: push the URL, render (the title), then normalise the URL.
    await page.evaluate(() => {
      history.pushState({}, '', '/spa/product');
      document.title = 'Trail jacket';
      history.replaceState({}, '', '/spa/product?colour=red');
    });
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50)));
    // A site taking a query out of the URL (utm_*, fbclid) with replaceState: the same page.
    await page.evaluate(() => history.replaceState({}, '', location.pathname));
    // A later event: once it has arrived, so has every page view made before it.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 50)));
    await page.evaluate(() => window.attune.track('marker.reached'));
    await flush(page);
    await until('the marker', () => named('marker.reached').length === 1);
    const views = named('page.viewed').sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(views).toHaveLength(2);
    expect(views[1]?.context?.page).toMatchObject({
      path: '/spa/product',
      url: `${suite.site.url}/spa/product?colour=red`,
      title: 'Trail jacket',
      referrer: expect.stringMatching(/\/spa\/list\?/),
    });
    expect(views[1]?.properties).toMatchObject({ path: '/spa/product', title: 'Trail jacket' });
  });

  it('(j) the back/forward cache keeps the page, and what it left unsent is delivered once', async () => {
    const page = await open('/j1', { 'data-flush-interval': '100' });
    await grant(page);
    await until('the consent event', () => named('consent.updated').length === 1);
    // The first page backs off (Retry-After: 30 s), so its event is still only in IndexedDB as it is left.
    suite.collector.fail(1, 503, '30');
    await page.evaluate(() => window.attune.track('wishlist.item.added', { productId: 'p-9' }));
    await until('the refused attempt', () =>
      suite.collector.requests.some((r) => r.method === 'POST' && r.events.length === 0),
    );
    await until('the event in IndexedDB', async () => (await storedIds(page)).length === 1);
    await page.evaluate(() => {
      addEventListener('pageshow', (event) => {
        document.body.dataset.restored = String(event.persisted);
      });
    });
    // The next page adopts the event of the cached one (which holds no lock) and sends it.
    await page.goto(`${suite.site.url}/j2?data-flush-interval=100`);
    await until('the event, from the next page', () => named('wishlist.item.added').length === 1);
    await page.goBack({ waitUntil: 'commit' });
    await page.waitForFunction(() => document.body.dataset.restored !== undefined);
    // Restored from the cache, not loaded again (Chromium gives the reason when it is not).
    expect(await restoredFromCache(page)).toEqual({ restored: 'true', reasons: null });
    // The restored page knows the event is no longer its own: it does not send it again.
    await flush(page);
    // The visitor sees the page again: a page view, as a load would have made.
    const viewsOf = (path: string) => named('page.viewed').filter((e) => e.context?.page?.path === path);
    await until('the restored page’s view', () => viewsOf('/j1').length === 2);
    await page.waitForTimeout(300);
    expect(named('wishlist.item.added')).toHaveLength(1);
    expectNoDuplicates();
  });
  it('(j3) an event IndexedDB refused to store (a full quota) is kept in memory and delivered once from the page restored from the back/forward cache', async () => {
    const page = await open('/k1', { 'data-flush-interval': '100' });
    await grant(page);
    await until('the consent event', () => named('consent.updated').length === 1);
    // From now on IndexedDB refuses every write of this page.
    await page.evaluate(() => {
      IDBObjectStore.prototype.put = () => {
        throw new DOMException('the quota is full', 'QuotaExceededError');
      };
    });
    suite.collector.fail(1, 503, '30');
    await page.evaluate(() => window.attune.track('wishlist.item.added', { productId: 'p-4' }));
    await until('the refused attempt', () =>
      suite.collector.requests.some((r) => r.method === 'POST' && r.events.length === 0),
    );
    await page.evaluate(() => {
      addEventListener('pageshow', (event) => {
        document.body.dataset.restored = String(event.persisted);
      });
    });
    await page.goto(`${suite.site.url}/k2?data-flush-interval=100`);
    await tagStarted(page);
    await page.goBack({ waitUntil: 'commit' });
    await page.waitForFunction(() => document.body.dataset.restored !== undefined);
    expect(await page.evaluate(() => document.body.dataset.restored)).toBe('true');
    // Only in the restored page's memory: it must not take it for an event another tab took over.
    await flush(page);
    await until('the event, from the restored page', () => named('wishlist.item.added').length === 1);
    expectNoDuplicates();
  });
});
