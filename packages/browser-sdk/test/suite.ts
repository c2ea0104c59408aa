/**
 * The fixture every real-browser suite shares: the script-tag build served from a
 * loopback site, a loopback collector that validates every body with the shared schema,
 * one headless Chromium, and a fresh browser context (its own storage) for each test; a
 * body the collector could not validate fails the test that sent it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CustomerAction } from '@attune/shared-schema';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { launchChromium } from './chromium.ts';
import { type Collector, type Site, startCollector, startSite } from './servers.ts';

export const DIST = fileURLToPath(new URL('../dist/attune.js', import.meta.url));

export interface BrowserSuite {
  readonly browser: Browser;
  readonly collector: Collector;
  readonly site: Site;
  /** This test's browser context. */
  readonly context: BrowserContext;
  /** Another visitor: closes this test's browser context and opens a fresh one in its place. */
  newVisitor(): Promise<BrowserContext>;
  /** The events of this name the collector received so far in this test, in arrival order. */
  named(name: string): CustomerAction[];
}

function ready<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} exists only while a test runs`);
  return value;
}

/** Registers the suite's hooks; the servers listen on 127.0.0.1 at the given ports. */
export function browserSuite(sitePort: number, collectorPort: number): BrowserSuite {
  let servers: { browser: Browser; collector: Collector; site: Site } | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    if (!existsSync(DIST))
      throw new Error('dist/attune.js is missing: run `pnpm --filter @attune/browser-sdk build` first');
    const collector = await startCollector(collectorPort);
    const site = await startSite(sitePort, collector.url, DIST);
    servers = { collector, site, browser: await launchChromium() };
  });

  afterAll(async () => {
    await servers?.browser.close();
    await servers?.site.close();
    await servers?.collector.close();
  });

  beforeEach(async () => {
    const { collector, browser } = ready(servers, 'the servers');
    collector.reset();
    context = await browser.newContext();
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    // Closing a page fires pagehide, and the tag beacons what it still holds: let that land
    // now, or it would reach the next test's collector as events that test never sent.
    await ready(servers, 'the servers').collector.settled();
    expect(ready(servers, 'the servers').collector.invalid).toEqual([]);
  });

  return {
    get browser() {
      return ready(servers, 'the browser').browser;
    },
    get collector() {
      return ready(servers, 'the collector').collector;
    },
    get site() {
      return ready(servers, 'the site').site;
    },
    get context() {
      return ready(context, 'the browser context');
    },
    async newVisitor() {
      await context?.close();
      context = await ready(servers, 'the browser').browser.newContext();
      return context;
    },
    named(name) {
      return ready(servers, 'the collector').collector.events.filter((e) => e.name === name);
    },
  };
}
