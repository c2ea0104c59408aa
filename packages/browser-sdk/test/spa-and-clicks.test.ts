/**
 * The script tag in real Chromium as a site's app uses it: declarative clicks in web
 * components (shadow DOM), a single-page app's page views (routes changed before the
 * choice, hash routes, a pushed query, back and forward), and tabs opened before the
 * visitor answered the banner.
 * Ports 19330 (site) and 19331 (collector).
 */
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

const suite = browserSuite(19330, 19331);
const named = suite.named;

async function open(path: string, params: Record<string, string> = {}): Promise<Page> {
  const tab = await suite.context.newPage();
  await tab.goto(`${suite.site.url}${path}?${new URLSearchParams(params)}`);
  await tagStarted(tab);
  return tab;
}

/** Resolves after the page's next tasks: the tag has looked at a history change made before. */
const taskLater = (page: Page) => page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 20)));

/** Tracks a last event and waits for it: every event tracked before it has arrived too. */
async function delivered(page: Page): Promise<void> {
  await page.evaluate(() => window.attune.track('marker.reached'));
  await page.evaluate(() => window.attune.flush());
  await until('the marker', () => named('marker.reached').length === 1);
}

describe('the script tag in a single-page app', () => {
  it('tracks a click on a tracked element inside a web component’s shadow root, and on a tracked component clicked inside its shadow root', async () => {
    const page = await open('/components', {
      'data-flush-interval': '100',
      body: `<promo-card id="card"></promo-card><shop-button id="host" data-attune-track="cart.opened"></shop-button>
<script>
customElements.define('promo-card', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({ mode: 'open' }).innerHTML =
      '<button data-attune-track="promo.clicked" data-attune-prop-slot="hero"><span>Shop the sale</span></button>';
  }
});
customElements.define('shop-button', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({ mode: 'open' }).innerHTML = '<button><span>Cart</span></button>';
  }
});
</script>`,
    });
    await page.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    // Playwright's locators pierce open shadow roots: the click lands on the span inside.
    await page.locator('#card span').click();
    await page.locator('#host span').click();
    await delivered(page);
    expect(named('promo.clicked').map((e) => e.properties)).toEqual([{ slot: 'hero' }]);
    expect(named('cart.opened')).toHaveLength(1);
  });
});

describe('page views of a single-page app (data-spa-page-views)', () => {
  it('a route changed before the choice is delivered with its own URL, title and referrer; a hash route is no page view; a query pushed, back and forward are one each', async () => {
    const page = await open('/spa/home', { 'data-spa-page-views': '', 'data-flush-interval': '100' });
    const home = page.url();
    // Before the banner is answered: held with the page it was made on.
    await page.evaluate(() => {
      history.pushState({}, '', '/spa/shoes');
      document.title = 'Shoes';
    });
    await taskLater(page);
    await page.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    // A hash router's route (pushState of a #fragment) and an in-page anchor: no page view.
    await page.evaluate(() => history.pushState({}, '', '#/sizes'));
    await page.evaluate(() => {
      location.hash = 'reviews';
    });
    // A filter pushed into the query: a page view of its own.
    await page.evaluate(() => history.pushState({}, '', '/spa/shoes?colour=red'));
    await taskLater(page);
    // Back (to the fragment, without the filter) and forward again: a page view each.
    await page.goBack();
    await taskLater(page);
    await page.goForward();
    await taskLater(page);
    await delivered(page);
    const views = named('page.viewed')
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((e) => ({
        url: e.context?.page?.url?.replace(suite.site.url, ''),
        referrer: e.context?.page?.referrer?.replace(suite.site.url, ''),
        title: e.context?.page?.title,
      }));
    expect(views).toEqual([
      { url: home.replace(suite.site.url, ''), referrer: '', title: 'Test /spa/home' },
      { url: '/spa/shoes', referrer: home.replace(suite.site.url, ''), title: 'Shoes' },
      { url: '/spa/shoes?colour=red', referrer: '/spa/shoes#reviews', title: 'Shoes' },
      { url: '/spa/shoes#reviews', referrer: '/spa/shoes?colour=red', title: 'Shoes' },
      { url: '/spa/shoes?colour=red', referrer: '/spa/shoes#reviews', title: 'Shoes' },
    ]);
  });
});

describe('tabs opened before the consent choice', () => {
  it('a tab that waited for the choice made in another tab sends what it held as the same visitor, in the same session', async () => {
    // The visitor opens a product in a second tab before answering the banner, then accepts in the first.
    const first = await open('/list', { 'data-flush-interval': '100' });
    const second = await open('/product', { 'data-flush-interval': '100' });
    await second.evaluate(() => window.attune.track('product.viewed', { productId: 'p-7' }));
    await first.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    await until('the grant', () => named('consent.updated').length === 1);
    await until('the second tab follows it', () =>
      second.evaluate(() => window.attune.consent.get().decided),
    );
    await delivered(second);
    // Every event of the second tab, the ones it held for the choice included, is the first tab's
    // visitor in the first tab's session: the browser is one visitor at the Worker.
    const [grant] = named('consent.updated');
    const ofSecondTab = suite.collector.events
      .filter((e) => e.context?.page?.path === '/product')
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map(({ name, anonymousId, sessionId }) => ({ name, anonymousId, sessionId }));
    expect(ofSecondTab).toEqual(
      ['page.viewed', 'product.viewed', 'marker.reached'].map((name) => ({
        name,
        anonymousId: grant?.anonymousId,
        sessionId: grant?.sessionId,
      })),
    );
  });
});
