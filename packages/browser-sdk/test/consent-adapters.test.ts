/**
 * The consent adapters of the script-tag build (dist/attune.js) in real headless
 * Chromium, as a site owner meets them: Google Consent Mode v2 signals pushed into the
 * page's own `dataLayer` or `gtag`, and consent taken from an IAB TCF v2.2 CMP through
 * `__tcfapi` (a minimal CMP the page defines, as a real one would, before the tag loads).
 * Events go to a loopback collector that validates every body with the shared schema.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { tagStarted } from './chromium.ts';
import { browserSuite } from './suite.ts';

/** What a TCF v2.2 CMP reports to `addEventListener` callbacks (the fields the adapter reads). */
interface TcReport {
  eventStatus: 'tcloaded' | 'cmpuishown' | 'useractioncomplete';
  gdprApplies: boolean;
  purpose: { consents: Record<string, boolean> };
}

/** The test's CMP, reachable from the test: it reports a new state to every listener. */
interface FakeCmp {
  report(data: TcReport): void;
  listeners(): number;
}

declare global {
  interface Window {
    attune: import('../src/attune.ts').Attune;
    dataLayer?: unknown[];
    gtag?: (...args: unknown[]) => void;
    gtagCalls?: unknown[][];
    __tcfapi?: (
      command: string,
      version: number,
      callback: (data: unknown, success: boolean) => void,
    ) => void;
    fakeCmp?: FakeCmp;
  }
}

const suite = browserSuite(18900, 18901);

/** Source for a page's head: `setUp(arg)`, run in the page (so `setUp` may use nothing outside itself). */
const inPage = <A>(setUp: (arg: A) => void, arg: A) => `(${setUp})(${JSON.stringify(arg) ?? ''});`;

/**
 * Opens a test page whose head first runs `scripts` (the site's own Google snippet or CMP,
 * placed before Attune's tag), then waits until the tag has loaded.
 */
async function open(path: string, params: Record<string, string>, ...scripts: string[]): Promise<Page> {
  const page = await suite.context.newPage();
  for (const content of scripts) await page.addInitScript({ content });
  await page.goto(`${suite.site.url}${path}?${new URLSearchParams(params)}`);
  await tagStarted(page);
  return page;
}

/** Google's tag as GTM and the gtag.js snippet leave it before loading: an array on the page. */
function googleDataLayer() {
  window.dataLayer = [];
}

/** A site whose own `gtag` records its calls (and pushes nothing into dataLayer itself). */
function ownGtag() {
  window.dataLayer = [];
  window.gtagCalls = [];
  window.gtag = (...args: unknown[]) => window.gtagCalls?.push(args);
}

/**
 * A minimal TCF v2.2 CMP: `addEventListener` answers at once with the current state (as a
 * loaded CMP does) and again on every `fakeCmp.report(…)`, always with `success` true.
 */
function fakeCmp(first: TcReport) {
  const callbacks: ((data: unknown, success: boolean) => void)[] = [];
  let current = first;
  const answer = (callback: (data: unknown, success: boolean) => void, listenerId: number) =>
    callback({ ...current, tcString: 'CP-test', tcfPolicyVersion: 4, cmpStatus: 'loaded', listenerId }, true);
  window.__tcfapi = (command, version, callback) => {
    if (command !== 'addEventListener' || version !== 2) return callback(null, false);
    callbacks.push(callback);
    answer(callback, callbacks.length);
  };
  window.fakeCmp = {
    report(data) {
      current = data;
      for (const [index, callback] of callbacks.entries()) answer(callback, index + 1);
    },
    listeners: () => callbacks.length,
  };
}

/** TCF purpose consents: the listed purposes (of the eleven) consented, the others not. */
const purposes = (...consented: number[]) =>
  Object.fromEntries(Array.from({ length: 11 }, (_, i) => [String(i + 1), consented.includes(i + 1)]));

/** A choice the person made in the CMP (consents on purposes 1 and 8 are Attune's analytics). */
const chosen = (...consented: number[]): TcReport => ({
  eventStatus: 'useractioncomplete',
  gdprApplies: true,
  purpose: { consents: purposes(...consented) },
});

/** The page's dataLayer as plain arrays, and whether each entry is an Arguments object (what gtag.js reads). */
const dataLayerOf = (page: Page) =>
  page.evaluate(() =>
    (window.dataLayer ?? []).map((entry) => ({
      args: Array.from(entry as ArrayLike<unknown>),
      isArguments: Object.prototype.toString.call(entry) === '[object Arguments]',
    })),
  );

const names = () => suite.collector.events.map((e) => e.name);
const consentEvents = () => suite.collector.events.filter((e) => e.name === 'consent.updated');

/** Tracks `name` and flushes: once it resolves, whatever the tag would send has reached the suite.collector. */
const trackAndFlush = (page: Page, name: string) =>
  page.evaluate((n) => {
    window.attune.track(n);
    return window.attune.flush();
  }, name);

const DENIED_SIGNALS = {
  ad_storage: 'denied',
  ad_user_data: 'denied',
  ad_personalization: 'denied',
  analytics_storage: 'denied',
  personalization_storage: 'denied',
};
/** Marketing and analytics granted, personalization not. */
const MARKETING_AND_ANALYTICS_SIGNALS = {
  ...DENIED_SIGNALS,
  ad_storage: 'granted',
  ad_user_data: 'granted',
  ad_personalization: 'granted',
  analytics_storage: 'granted',
};

describe('Google Consent Mode v2 from the script tag', () => {
  it('pushes a denied default into the page’s dataLayer, then an update on every choice (only with data-google-consent-mode); a returning visitor’s choice follows its check', async () => {
    const page = await open(
      '/gcm',
      { 'data-google-consent-mode': '', 'data-flush-interval': '60000' },
      inPage(googleDataLayer, undefined),
    );
    // Before any choice: everything denied, as gtag.js arguments.
    expect(await dataLayerOf(page)).toEqual([
      { args: ['consent', 'default', DENIED_SIGNALS], isArguments: true },
    ]);
    // The update is in the dataLayer before the page's own consent listeners run (they may fire Google tags).
    const seenByListener = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          window.attune.consent.onChange(() => resolve(window.dataLayer?.length ?? 0));
          window.attune.consent.set({ analytics: true }, 'banner');
        }),
    );
    expect(seenByListener).toBe(2);
    expect((await dataLayerOf(page))[1]).toEqual({
      args: ['consent', 'update', { ...DENIED_SIGNALS, analytics_storage: 'granted' }],
      isArguments: true,
    });
    await page.evaluate(() => window.attune.consent.set({ marketing: true }, 'banner'));
    expect((await dataLayerOf(page)).slice(2)).toEqual([
      {
        args: ['consent', 'update', MARKETING_AND_ANALYTICS_SIGNALS],
        isArguments: true,
      },
    ]);
    // On their next page Google's tags are asked to wait while the tag checks the choice's
    // policy version with /v1/config (this collector has none: the stored choice stands), then
    // get the choice as the update they waited for.
    const returning = await open(
      '/gcm',
      { 'data-google-consent-mode': '', 'data-flush-interval': '60000' },
      inPage(googleDataLayer, undefined),
    );
    await returning.waitForFunction(() => (window.dataLayer?.length ?? 0) >= 2);
    expect((await dataLayerOf(returning)).map((entry) => entry.args)).toEqual([
      ['consent', 'default', { ...DENIED_SIGNALS, wait_for_update: 500 }],
      ['consent', 'update', MARKETING_AND_ANALYTICS_SIGNALS],
    ]);

    // Without the attribute (another visitor) the tag leaves Google's dataLayer alone.
    await suite.newVisitor();
    const plain = await open(
      '/gcm-off',
      { 'data-flush-interval': '60000' },
      inPage(googleDataLayer, undefined),
    );
    await plain.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    expect(await plain.evaluate(() => window.attune.consent.get().categories.analytics)).toBe(true);
    expect(await dataLayerOf(plain)).toEqual([]);
  });

  it('calls the page’s own gtag function when there is one, and pushes nothing else', async () => {
    const page = await open(
      '/gcm-gtag',
      { 'data-google-consent-mode': '', 'data-flush-interval': '60000' },
      inPage(ownGtag, undefined),
    );
    expect(await page.evaluate(() => window.gtagCalls)).toEqual([['consent', 'default', DENIED_SIGNALS]]);
    await page.evaluate(() => window.attune.consent.set({ analytics: true }, 'banner'));
    expect(await page.evaluate(() => window.gtagCalls)).toEqual([
      ['consent', 'default', DENIED_SIGNALS],
      ['consent', 'update', { ...DENIED_SIGNALS, analytics_storage: 'granted' }],
    ]);
    expect(await dataLayerOf(page)).toEqual([]);
  });
});

describe('IAB TCF v2.2 consent from the script tag', () => {
  it('follows the CMP: its analytics consent sends events, a withdrawal stops them, a new grant resumes', async () => {
    // A returning visitor: the CMP has their choice (purposes 1 and 8) as soon as it loads.
    const page = await open(
      '/tcf',
      { 'data-tcf': '', 'data-flush-interval': '60000' },
      inPage(fakeCmp, { ...chosen(1, 8), eventStatus: 'tcloaded' }),
    );
    await trackAndFlush(page, 'article.read');
    // The CMP's choice is taken once /v1/config has answered: the page view, made before it, waited for it.
    expect(names()).toEqual(['page.viewed', 'consent.updated', 'article.read']);
    const analyticsOnly = {
      categories: { necessary: true, analytics: true, personalization: false, marketing: false },
      policyVersion: '1',
    };
    expect(consentEvents()[0]?.properties).toEqual({ ...analyticsOnly, source: 'tcf' });
    expect(suite.collector.events.find((e) => e.name === 'article.read')?.context?.consent).toEqual(
      analyticsOnly,
    );
    expect(await page.evaluate(() => window.attune.consent.get())).toMatchObject({
      decided: true,
      ...analyticsOnly,
    });

    // The person withdraws measurement in the CMP: the withdrawal is recorded, later events are not sent.
    await page.evaluate((choice) => window.fakeCmp?.report(choice), chosen(1));
    await trackAndFlush(page, 'after.withdrawal');
    // Consenting again proves the tag was listening all along: only what follows the grant is sent.
    await page.evaluate((choice) => window.fakeCmp?.report(choice), chosen(1, 8));
    await trackAndFlush(page, 'after.regrant');
    expect(names().slice(3)).toEqual(['consent.updated', 'consent.updated', 'after.regrant']);
    expect(consentEvents().map((e) => e.properties?.categories)).toEqual([
      analyticsOnly.categories,
      { ...analyticsOnly.categories, analytics: false },
      analyticsOnly.categories,
    ]);
  });

  it('takes a first visitor’s CMP choice under the site’s policy version, not the built-in one', async () => {
    // A site whose categories are its own serves its own policy version: the Worker counts a
    // claim under any other version as consent to nothing.
    const policyVersion = '2026-11-a';
    suite.collector.consentConfig = {
      policyVersion,
      categories: ['necessary', 'analytics', 'personalization', 'marketing'].map((key, index) => ({
        key,
        label: key,
        description: '',
        required: index === 0,
        enabled: true,
        default: index === 0,
      })),
    };
    // New to Attune, not to the CMP: it has their choice as soon as it loads.
    const page = await open(
      '/tcf-first-visit',
      { 'data-tcf': '', 'data-flush-interval': '60000' },
      inPage(fakeCmp, { ...chosen(1, 8), eventStatus: 'tcloaded' }),
    );
    await trackAndFlush(page, 'article.read');
    // The CMP's choice is taken once /v1/config has answered: the page view, made before it, waited for it.
    expect(names()).toEqual(['page.viewed', 'consent.updated', 'article.read']);
    expect(suite.collector.events.map((e) => e.context?.consent?.policyVersion)).toEqual([
      policyVersion,
      policyVersion,
      policyVersion,
    ]);
    expect(consentEvents()[0]?.properties).toMatchObject({ policyVersion, source: 'tcf' });
    expect(await page.evaluate(() => window.attune.consent.get())).toMatchObject({
      decided: true,
      policyVersion,
    });
  });

  it('sends nothing but the refusal when the CMP’s analytics purposes are not consented; a banner shown is no choice', async () => {
    // The banner is up (cmpuishown) — even carrying consents, as when a visitor reopens it — and no choice is made yet.
    const page = await open(
      '/tcf-refused',
      { 'data-tcf': '', 'data-flush-interval': '60000' },
      inPage(fakeCmp, {
        eventStatus: 'cmpuishown',
        gdprApplies: true,
        purpose: { consents: purposes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) },
      }),
    );
    expect(await page.evaluate(() => window.fakeCmp?.listeners())).toBe(1);
    await trackAndFlush(page, 'before.choice');
    expect(suite.collector.requests).toEqual([]);
    expect(await page.evaluate(() => window.attune.consent.get().decided)).toBe(false);

    // The person consents to device access (1) only, not to measurement (8): a refusal.
    await page.evaluate((choice) => window.fakeCmp?.report(choice), chosen(1));
    await trackAndFlush(page, 'after.refusal');
    expect(names()).toEqual(['consent.updated']);
    expect(consentEvents()[0]?.properties).toMatchObject({
      categories: { necessary: true, analytics: false, personalization: false, marketing: false },
      source: 'tcf',
    });

    // They reopen the banner: while it shows, nothing changes.
    await page.evaluate(
      (consents) =>
        window.fakeCmp?.report({ eventStatus: 'cmpuishown', gdprApplies: true, purpose: { consents } }),
      purposes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    );
    await trackAndFlush(page, 'while.banner.shown');
    expect(names()).toEqual(['consent.updated']);
    expect(await page.evaluate(() => window.attune.consent.get().categories.analytics)).toBe(false);

    // Their choice in it counts.
    await page.evaluate((choice) => window.fakeCmp?.report(choice), chosen(1, 8));
    await trackAndFlush(page, 'after.grant');
    expect(names()).toEqual(['consent.updated', 'consent.updated', 'after.grant']);
  });

  it('passes a choice made in the CMP on to Google’s tags when both adapters are on', async () => {
    // A first visit: the CMP shows its banner and Google's tags wait for consent in the dataLayer.
    const page = await open(
      '/tcf-gcm',
      { 'data-tcf': '', 'data-google-consent-mode': '', 'data-flush-interval': '60000' },
      inPage(googleDataLayer, undefined),
      inPage(fakeCmp, { ...chosen(), eventStatus: 'cmpuishown' }),
    );
    // Marketing (1 + 3 + 4) and analytics (1 + 8), not personalization (5 + 6).
    await page.evaluate((choice) => window.fakeCmp?.report(choice), chosen(1, 3, 4, 8));
    // The tag takes the CMP's choice (and tells Google's tags) once /v1/config has answered.
    await page.waitForFunction(() => (window.dataLayer?.length ?? 0) > 1);
    expect((await dataLayerOf(page)).map((entry) => entry.args)).toEqual([
      ['consent', 'default', DENIED_SIGNALS],
      ['consent', 'update', MARKETING_AND_ANALYTICS_SIGNALS],
    ]);
    await trackAndFlush(page, 'article.read');
    expect(names()).toEqual(['page.viewed', 'consent.updated', 'article.read']);
  });
});
