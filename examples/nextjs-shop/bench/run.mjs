#!/usr/bin/env node
/**
 * Benchmark: a product page through the Worker (edge-proxy mode, personalized: the slots
 * are decided and rewritten for a consented visitor with a profile) against the same page
 * straight from the shop, in the same run, alternating requests so both see the same
 * machine load. Measures time to first byte and total time over HTTP (node:http, keep-alive
 * off, like a first navigation), and TTFB and load time in headless Chromium (Navigation
 * Timing). Prints a markdown table with ratios (Worker / shop). Ports 23100-23199.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../../scripts/chromium.mjs';
import { startLocalSystem } from '../../../scripts/up.mjs';

const HTTP_SAMPLES = Number(process.env.BENCH_HTTP_SAMPLES ?? 200);
const BROWSER_SAMPLES = Number(process.env.BENCH_BROWSER_SAMPLES ?? 30);

/** One GET: ms to the response headers (TTFB) and to the last body byte. */
function timedGet(url, cookie) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(
      url,
      { headers: { accept: 'text/html', cookie, connection: 'close' }, agent: false },
      (res) => {
        const ttfb = Number(process.hrtime.bigint() - started) / 1e6;
        const chunks = [];
        res.on('data', (chunk) => {
          chunks.push(chunk);
        });
        res.on('end', () => {
          const total = Number(process.hrtime.bigint() - started) / 1e6;
          const raw = Buffer.concat(chunks);
          const encoding = res.headers['content-encoding'];
          const html = (
            encoding === 'gzip' ? gunzipSync(raw) : encoding === 'br' ? brotliDecompressSync(raw) : raw
          ).toString('utf8');
          const personalized = html.includes('data-attune-variant');
          resolve({ status: res.statusCode, ttfb, total, personalized });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const fmt = (ms) => `${ms.toFixed(1)} ms`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

async function main() {
  const results = join(import.meta.dirname, '..', 'test-results');
  const stateDir = join(results, 'bench-system');
  process.stderr.write('bench: starting the local system on ports 23100-23199…\n');
  const system = await startLocalSystem({
    ports: { shop: 23100, worker: 23187, directus: 23155 },
    stateDir,
    directusHome: join(stateDir, 'directus'),
    logDir: join(results, 'bench-logs'),
    inspectorPort: 23101,
    // Everyone personalized (no holdout group), so every Worker sample pays for a decision
    // and a rewrite; the decision budget stays the real one (50 ms).
    // BENCH_DECISION_BUDGET_MS overrides it to tell a missed budget from a missing decision.
    vars: {
      HOLDOUT_PERCENT: '0',
      ...(process.env.BENCH_DECISION_BUDGET_MS
        ? { DECISION_BUDGET_MS: process.env.BENCH_DECISION_BUDGET_MS }
        : {}),
    },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  try {
    const products = await (
      await fetch(`${system.urls.directus}/items/products?limit=-1&fields=slug,category`, {
        headers: { authorization: `Bearer ${system.secrets.shopDirectusToken}` },
      })
    ).json();
    const outdoor = products.data.filter((p) => p.category === 'outdoor');
    const target = outdoor[0]?.slug;
    if (!target) throw new Error('no outdoor product in the catalog');
    const path = `/products/${target}`;

    // A consented visitor with a profile: grant, browse three products, keep the cookies.
    const context = await browser.newContext({ baseURL: system.urls.worker });
    const page = await context.newPage();
    await page.goto('/');
    await page.getByTestId('consent-accept').click();
    for (const p of outdoor.slice(1, 4)) {
      await page.goto(`/products/${p.slug}`);
      await page.waitForFunction(() => 'attune' in window);
      await page.evaluate(() => window.attune.flush());
    }
    const cookies = await context.cookies(system.urls.worker);
    const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');

    // HTTP: alternate shop / Worker, after a warm-up of both.
    const shopUrl = `${system.urls.shop}${path}`;
    const workerUrl = `${system.urls.worker}${path}`;
    for (let i = 0; i < 20; i++) {
      await timedGet(shopUrl, cookie);
      await timedGet(workerUrl, cookie);
    }
    const http = { shop: [], worker: [] };
    for (let i = 0; i < HTTP_SAMPLES; i++) {
      http.shop.push(await timedGet(shopUrl, cookie));
      http.worker.push(await timedGet(workerUrl, cookie));
    }

    // Chromium: full navigations (HTML, scripts, images), Navigation Timing.
    const nav = async (url) =>
      page.goto(url).then(() =>
        page.evaluate(
          () =>
            new Promise((resolve) => {
              const read = () => {
                const [e] = performance.getEntriesByType('navigation');
                if (e && e.loadEventEnd > 0)
                  resolve({ ttfb: e.responseStart - e.startTime, load: e.loadEventEnd - e.startTime });
                else setTimeout(read, 20);
              };
              read();
            }),
        ),
      );
    const browserTimes = { shop: [], worker: [] };
    for (let i = 0; i < 3; i++) {
      await nav(shopUrl);
      await nav(workerUrl);
    }
    for (let i = 0; i < BROWSER_SAMPLES; i++) {
      browserTimes.shop.push(await nav(shopUrl));
      browserTimes.worker.push(await nav(workerUrl));
    }

    const rows = [];
    const row = (name, shopValues, workerValues) => {
      const s50 = quantile(shopValues, 0.5);
      const w50 = quantile(workerValues, 0.5);
      const s95 = quantile(shopValues, 0.95);
      const w95 = quantile(workerValues, 0.95);
      rows.push(
        `| ${name} | ${fmt(s50)} / ${fmt(s95)} | ${fmt(w50)} / ${fmt(w95)} | ${ratio(w50, s50)} | ${ratio(w95, s95)} |`,
      );
    };
    row(
      `HTTP TTFB (n=${HTTP_SAMPLES})`,
      http.shop.map((r) => r.ttfb),
      http.worker.map((r) => r.ttfb),
    );
    row(
      `HTTP total (n=${HTTP_SAMPLES})`,
      http.shop.map((r) => r.total),
      http.worker.map((r) => r.total),
    );
    row(
      `Chromium TTFB (n=${BROWSER_SAMPLES})`,
      browserTimes.shop.map((r) => r.ttfb),
      browserTimes.worker.map((r) => r.ttfb),
    );
    row(
      `Chromium load (n=${BROWSER_SAMPLES})`,
      browserTimes.shop.map((r) => r.load),
      browserTimes.worker.map((r) => r.load),
    );
    const statuses = new Set([...http.shop, ...http.worker].map((r) => r.status));
    const personalizedShare = http.worker.filter((r) => r.personalized).length / http.worker.length;
    process.stdout.write(
      [
        `Product page \`${path}\`: straight from the shop (next start) vs through the Worker (wrangler dev, edge-proxy mode,`,
        'slots decided and rewritten for a consented visitor with a profile), same run, alternating requests.',
        `Worker responses with personalized slots: ${(personalizedShare * 100).toFixed(0)}% (the others missed the decision budget, ${process.env.BENCH_DECISION_BUDGET_MS ?? 50} ms, and kept the shop's defaults).`,
        `HTTP statuses seen: ${[...statuses].join(', ')}.`,
        '',
        '| metric | shop p50 / p95 | through Worker p50 / p95 | ratio p50 | ratio p95 |',
        '|---|---|---|---|---|',
        ...rows,
        '',
      ].join('\n'),
    );
    await context.close();
  } finally {
    await browser.close();
    await system.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
