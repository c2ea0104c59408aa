/**
 * Headless Chromium for the end-to-end tests (Debian's /usr/bin/chromium driven by
 * playwright-core; Playwright's own browser download cannot work offline), plus what the
 * tests read from pages: Attune's network traffic, slots in raw HTML, screenshots.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page, type Request } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../../scripts/chromium.mjs';

export const SCREENSHOTS = join(import.meta.dirname, '..', 'test-results', 'screenshots');

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

export async function newVisitor(
  browser: Browser,
  baseURL: string,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  return { context, page };
}

/** An event as the SDK sent it. */
export interface SentEvent {
  name: string;
  type: string;
  anonymousId: string;
  userId?: string;
  properties?: Record<string, unknown>;
}

/** Every request a page makes to Attune's collect endpoint, with its decoded events. */
export function watchCollect(page: Page): { requests: Request[]; events: () => SentEvent[] } {
  const requests: Request[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.endsWith('/v1/collect')) requests.push(r);
  });
  return {
    requests,
    events: () =>
      requests.flatMap((r) => {
        try {
          const body = JSON.parse(r.postData() ?? '{}') as { batch?: SentEvent[] };
          return body.batch ?? [];
        } catch {
          return [];
        }
      }),
  };
}

/**
 * Every request a page makes to Attune's `/v1/config`: the tag reads it once per page load,
 * and the shop's banner and preferences form use that read (its `consent.config()`).
 */
export function watchConfigReads(page: Page): Request[] {
  const requests: Request[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.endsWith('/v1/config')) requests.push(r);
  });
  return requests;
}

/** Sends what the SDK holds now (window.attune is the shop's SDK instance). */
export async function flush(page: Page): Promise<void> {
  await page.waitForFunction(() => 'attune' in window);
  await page.evaluate(async () => {
    await (window as unknown as { attune: { flush(): Promise<unknown> } }).attune.flush();
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Lazy images (the edge's cards) load once the page is quiet.
  await page.waitForLoadState('networkidle').catch(() => undefined);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

export interface SlotContent {
  /** The variant the Worker filled in (`data-attune-variant`), absent when the origin's default stayed. */
  variant: string | undefined;
  text: string;
  html: string;
  /** Product slugs the slot links to (`/products/<slug>`). */
  productSlugs: string[];
  productIds: string[];
}

/**
 * The slots of a raw HTML response, parsed without running it: what the server (the
 * Worker) sent, not what scripts changed later.
 */
export async function slotsInHtml(page: Page, html: string): Promise<Record<string, SlotContent>> {
  return page.evaluate((source) => {
    const doc = new DOMParser().parseFromString(source, 'text/html');
    const out: Record<
      string,
      {
        variant: string | undefined;
        text: string;
        html: string;
        productSlugs: string[];
        productIds: string[];
      }
    > = {};
    for (const el of Array.from(doc.querySelectorAll('[data-attune-slot]'))) {
      const name = el.getAttribute('data-attune-slot') ?? '';
      const links = Array.from(el.querySelectorAll('a[href]')).map((a) => a.getAttribute('href') ?? '');
      out[name] = {
        variant: el.getAttribute('data-attune-variant') ?? undefined,
        text: (el.textContent ?? '').replace(/\s+/g, ' ').trim(),
        html: el.innerHTML,
        productSlugs: links
          .map((h) => /\/products\/([^/?#]+)/.exec(h)?.[1])
          .filter((s): s is string => s !== undefined)
          .map(decodeURIComponent),
        productIds: Array.from(el.querySelectorAll('[data-product-id]')).map(
          (n) => n.getAttribute('data-product-id') ?? '',
        ),
      };
    }
    return out;
  }, html);
}

/** The HTML response for a path, fetched with the page's cookies (as a full page load would be). */
export async function rawHtml(page: Page, path: string): Promise<string> {
  const res = await page.request.get(path, { headers: { accept: 'text/html' } });
  if (!res.ok()) throw new Error(`GET ${path} → ${res.status()}`);
  return res.text();
}
