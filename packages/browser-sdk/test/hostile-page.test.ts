/**
 * The script tag (dist/attune.js) and the npm build on a messy page in real Chromium: odd
 * arguments from the host page, and a hostile environment (a fetch wrapper that throws,
 * a failing IndexedDB). A bad call is reported, never thrown into the page, and never keeps
 * the calls after it, or the events already queued, from being delivered.
 * Ports 19160 (site) and 19161 (collector).
 */
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { restoredFromCache, tagStarted } from './chromium.ts';
import { until } from './servers.ts';
import { browserSuite } from './suite.ts';

declare global {
  interface Window {
    attune: import('../src/attune.ts').Attune;
  }
}

const suite = browserSuite(19160, 19161);

/** A tab whose uncaught errors are collected, with `init` run before any of the page's scripts. */
async function tab(init?: string): Promise<{ page: Page; errors: string[] }> {
  const page = await suite.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  if (init) await page.addInitScript(init);
  return { page, errors };
}

/** Opens a test page and waits until the tag has replaced the stub. */
async function open(page: Page, path: string, params: Record<string, string> = {}): Promise<Page> {
  await page.goto(`${suite.site.url}${path}?${new URLSearchParams(params)}`);
  await tagStarted(page);
  return page;
}

const named = suite.named;

describe('a messy page, a hostile browser', () => {
  it('a page fetch wrapper that throws instead of rejecting: the tag still starts for a returning visitor, and what it records is delivered later', async () => {
    const first = await open((await tab()).page, '/fetch-1', { 'data-flush-interval': '100' });
    await first.evaluate(() => window.attune.consent.set({ analytics: true }));
    await until('the first page’s events', () => named('consent.updated').length === 1);
    await first.close();
    // A wrapper with a bug of its own: it reads `input.url`, which a string URL has not.
    const { page, errors } = await tab(
      'const original = fetch; window.fetch = (input, init) => original(input.url.slice(0), init);',
    );
    await open(page, '/fetch-2', { 'data-flush-interval': '100' });
    await page.evaluate(() => window.attune.track('product.viewed', { productId: 'p-1' }));
    // Its requests fail as network errors do: the events wait in IndexedDB for a page whose fetch works.
    await page.waitForTimeout(500);
    await page.close();
    expect(errors).toEqual([]);
    await open((await tab()).page, '/fetch-3', { 'data-flush-interval': '100' });
    await until('the second page’s events', () => named('product.viewed').length === 1);
    await until('every page’s view', () => named('page.viewed').length === 3);
    // (The third page's own view may come before those it takes over from the second.)
    expect(
      named('page.viewed')
        .map((e) => e.context?.page?.path)
        .sort(),
    ).toEqual(['/fetch-1', '/fetch-2', '/fetch-3']);
  });

  it('odd arguments from the page (a Symbol name, a getter that throws, null options) throw nothing into it, and the calls after them are delivered: made directly, or queued by the stub before the tag loaded', async () => {
    const { page, errors } = await tab();
    const stub = [
      'attune.consent.set({ analytics: true });',
      "attune.page({ get title() { throw new Error('a getter that throws'); } });",
      "attune.track('stub.after', { n: 1 });",
    ].join('');
    await open(page, '/odd', { 'data-flush-interval': '100', stub });
    const thrown = await page.evaluate(() => {
      const calls = [
        () => window.attune.track(Symbol('name') as unknown as string),
        () => window.attune.track({ toString: () => ({}) } as unknown as string),
        () => window.attune.identify('u1', {}, null as unknown as { signature: string }),
        () => window.attune.consent.set(null as unknown as Record<string, boolean>),
        () =>
          window.attune.page(
            new Proxy(
              {},
              {
                ownKeys: () => {
                  throw new Error('a proxy');
                },
              },
            ),
          ),
      ];
      const failures: string[] = [];
      for (const call of calls) {
        try {
          call();
        } catch (error) {
          failures.push(String(error));
        }
      }
      window.attune.track('direct.after', { n: 2 });
      return failures;
    });
    expect(thrown).toEqual([]);
    await until('the calls after the bad ones', () => named('direct.after').length === 1);
    expect(named('stub.after')).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('an event held for a consent choice says what it said when it was tracked, though the page changes the object it passed', async () => {
    const page = await open((await tab()).page, '/held', { 'data-flush-interval': '100' });
    await page.evaluate(() => {
      const cart = { step: 1, items: ['p-1'] };
      window.attune.track('checkout.step_viewed', cart);
      cart.step = 2;
      cart.items.push('p-2');
      window.attune.track('checkout.step_viewed', cart);
      window.attune.consent.set({ analytics: true });
    });
    await until('both steps', () => named('checkout.step_viewed').length === 2);
    expect(named('checkout.step_viewed').map((e) => e.properties)).toEqual([
      { step: 1, items: ['p-1'] },
      { step: 2, items: ['p-1', 'p-2'] },
    ]);
  });

  it('with an IndexedDB that cannot be opened (as in some private modes), the page still lets go of its tab lock when left, and the back/forward cache keeps it', async () => {
    // Every open fails with an error event, as a browser that refuses the database does.
    await suite.context.addInitScript(() => {
      IDBFactory.prototype.open = () => {
        const request = {} as IDBOpenDBRequest & { error: DOMException };
        setTimeout(() => {
          request.error = new DOMException('the database cannot be opened', 'InvalidStateError');
          request.onerror?.(new Event('error'));
        });
        return request;
      };
    });
    const { page, errors } = await tab();
    await open(page, '/no-db-1', { 'data-flush-interval': '100' });
    await page.evaluate(() => {
      window.attune.consent.set({ analytics: true });
      addEventListener('pageshow', (event) => {
        document.body.dataset.restored = String(event.persisted);
      });
    });
    await until('the consent event', () => named('consent.updated').length === 1);
    // The next page of the site looks for closed tabs' events, querying the locks: Chromium evicts
    // a cached page that still holds one.
    await open(page, '/no-db-2', { 'data-flush-interval': '100' });
    await until('the next page’s view', () => named('page.viewed').length === 2);
    await page.waitForTimeout(500);
    await page.goBack({ waitUntil: 'commit' });
    await tagStarted(page);
    // Restored from the cache, not loaded again (Chromium gives the reasons when it is not).
    expect(await restoredFromCache(page)).toEqual({ restored: 'true', reasons: null });
    await until('the restored page’s view', () => named('page.viewed').length === 3);
    expect(errors).toEqual([]);
  });

  it('npm build: onError says which event could not be sent and why, and the good events around it are delivered', async () => {
    const { page, errors } = await tab();
    await page.route(`${suite.site.url}/attune.mjs`, async (route) =>
      route.fulfill({
        contentType: 'text/javascript',
        body: await readFile(new URL('../dist/attune.mjs', import.meta.url), 'utf8'),
      }),
    );
    // A page of the site (a page Playwright made up would be a public one, barred from loopback)
    // whose tag sends nothing: the npm build is this test's tracker.
    await page.goto(`${suite.site.url}/esm?data-auto-page-view=false&data-track-clicks=false`);
    await page.addScriptTag({
      type: 'module',
      content: `
import { createAttune } from '/attune.mjs';
window.reported = [];
const attune = createAttune({ endpoint: '${suite.collector.url}', writeKey: 'pk_test', autoPageView: false, flushInterval: 100, onError: (e) => window.reported.push(e.code + ' ' + e.message) });
const looped = { productId: 'p-1' };
looped.self = looped;
attune.track('product.viewed', looped);
attune.consent.set({ analytics: true });
attune.track('cart.item.added', { productId: 'p-1', quantity: 1n });
attune.track('search.performed', { query: 'x'.repeat(70000) });
attune.track('product.viewed', { productId: 'p-2' });`,
    });
    await until('the good event', () => named('product.viewed').length === 1);
    expect(named('product.viewed')[0]?.properties).toEqual({ productId: 'p-2' });
    expect(await page.evaluate(() => (window as unknown as { reported: string[] }).reported)).toEqual([
      expect.stringMatching(
        /^invalid_event product\.viewed: TypeError: Converting circular structure to JSON.*property 'self' closes the circle$/s,
      ),
      'invalid_event cart.item.added: TypeError: Do not know how to serialize a BigInt',
      expect.stringMatching(/^invalid_event search\.performed: 70\d{3} bytes, at most 32768$/),
    ]);
    expect(errors).toEqual([]);
  });

  it('the script tag, which cannot take an onError, tells the developer in the console what it could not send', async () => {
    const { page } = await tab();
    const warnings: unknown[] = [];
    page.on('console', (message) => {
      if (message.type() === 'warning') warnings.push(message.args()[0]?.jsonValue());
    });
    await open(page, '/console', { 'data-flush-interval': '100' });
    await page.evaluate(() => {
      window.attune.consent.set({ analytics: true });
      window.attune.track('Add To Cart');
      window.attune.track('search.performed', { query: 'x'.repeat(40_000) });
    });
    await until('two warnings', () => warnings.length === 2);
    expect(await Promise.all(warnings)).toEqual([
      { code: 'invalid_event', message: 'bad event name: Add To Cart' },
      {
        code: 'invalid_event',
        message: expect.stringMatching(/^search\.performed: 40\d{3} bytes, at most 32768$/),
      },
    ]);
  });
});
