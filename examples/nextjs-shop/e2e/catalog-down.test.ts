/**
 * The shop as `./attune up` runs it (`next start`, a production build) when Directus, the
 * catalog, is down: a second shop process on its own port whose DIRECTUS_URL answers
 * nothing. Production Next.js strips a Server Component's error message before the error
 * page sees it, so what a shopper is told must be rendered by the pages themselves; and
 * paying answers 503 with a message, not an unhandled 500.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, newVisitor } from './browser.ts';
import { eventually, system } from './system.ts';

const PORT = 23009;
const SHOP = `http://127.0.0.1:${PORT}`;
/** Nothing listens on the discard port: every catalog read fails as with Directus stopped. */
const DEAD_DIRECTUS = 'http://127.0.0.1:9';
const HINT = /Directus at http:\/\/127\.0\.0\.1:9 is not reachable.*start it with \.\/attune up/s;

let shop: ChildProcess | undefined;
let browser: Browser;

beforeAll(async () => {
  const shopDir = join(import.meta.dirname, '..');
  const next = createRequire(join(shopDir, 'package.json')).resolve('next/dist/bin/next');
  // The build the global setup made (next build), served as `./attune up` serves it.
  shop = spawn(process.execPath, [next, 'start', '--hostname', '127.0.0.1', '--port', String(PORT)], {
    cwd: shopDir,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      DIRECTUS_URL: DEAD_DIRECTUS,
      ATTUNE_WORKER_URL: system().urls.worker,
    },
    stdio: 'ignore',
  });
  await eventually(
    'the second shop to listen',
    async () => ((await fetch(SHOP)).status ? true : undefined),
    60_000,
  );
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  shop?.kill('SIGTERM');
});

describe('the shop with Directus down, under next start', () => {
  it.each(['/', '/products/trail-boots', '/category/outdoor', '/search?q=tent', '/new'])(
    '%s tells the shopper the catalog is unavailable and how to start it',
    async (path) => {
      const { page, context } = await newVisitor(browser, SHOP);
      await page.goto(path);
      const hint = page.getByTestId('catalog-unavailable');
      await hint.waitFor({ timeout: 10_000 });
      expect(await hint.textContent()).toMatch(HINT);
      await context.close();
    },
  );

  it('paying answers 503 with Retry-After and a message, which the checkout shows', async () => {
    const res = await fetch(`${SHOP}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ card: '4242 4242 4242 4242', lines: [{ productId: 'p-1', quantity: 1 }] }),
    });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.json()).toEqual({ error: 'the catalog is unavailable; try again' });

    const { page, context } = await newVisitor(browser, SHOP);
    await page.goto('/cart');
    await page.evaluate(() => {
      const line = {
        productId: 'p-1',
        slug: 'tent',
        title: 'Tent',
        category: 'outdoor',
        tags: [],
        price: 10,
        currency: 'EUR',
        quantity: 1,
      };
      localStorage.setItem('shop-cart', JSON.stringify([line]));
    });
    await page.goto('/checkout');
    await page.getByTestId('pay').click();
    await expect
      .poll(async () => page.locator('form.checkout [role="alert"]').textContent(), { timeout: 10_000 })
      .toBe('the catalog is unavailable; try again');
    await context.close();
  });
});
