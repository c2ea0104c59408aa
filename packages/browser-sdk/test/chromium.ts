/**
 * Launches Debian's headless Chromium for the real-browser suites, with the flags this
 * machine and CI need (Playwright's own browser download cannot work here).
 */
import { type Browser, chromium } from 'playwright-core';
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
