/**
 * Launches Debian's headless Chromium for the real-browser suites, with the flags this
 * machine and CI need (Playwright's own browser download cannot work here).
 */
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../../scripts/chromium.mjs';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // Playwright turns the back/forward cache off by default; visitors' browsers have it on.
    ignoreDefaultArgs: ['--disable-back-forward-cache'],
    args: CHROMIUM_ARGS,
  });
}

/**
 * Whether the page shown was restored from the back/forward cache (the test marks a
 * `pageshow` with `persisted` in `data-restored`), and, when it was loaded again instead,
 * the reasons Chromium gives.
 */
export function restoredFromCache(page: Page): Promise<{ restored: string | undefined; reasons: unknown }> {
  return page.evaluate(() => ({
    restored: document.body.dataset.restored,
    reasons:
      (
        performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming & {
          notRestoredReasons?: unknown;
        }
      ).notRestoredReasons ?? null,
  }));
}

/** Waits until the script tag has replaced the inline stub on `page` (the stub's calls replayed). */
export async function tagStarted(page: Page): Promise<void> {
  await page.waitForFunction(() => typeof window.attune?.flush === 'function' && !('q' in window.attune));
}
