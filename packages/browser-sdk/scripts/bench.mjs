// Benchmarks for the browser SDK, printed as markdown tables (figures quoted in README):
// 1. Size: the script tag (dist/attune.js) beside the same "init + page + track" usage
//    bundled with esbuild (minified, browser platform) for Segment, RudderStack, PostHog
//    and Snowplow, all gzipped (level 9) in this run; ratio = their bytes / Attune's.
// 2. Main-thread cost in headless Chromium: track() per call and one flush of 20 events,
//    each beside a baseline measured in the same page and run, reported as ratios.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gzip = (code) => gzipSync(code, { level: 9 }).length;

async function bundle(contents) {
  const result = await build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const code = result.outputFiles[0]?.text ?? '';
  return { min: Buffer.byteLength(code), gz: gzip(code) };
}

const usages = {
  '@segment/analytics-next 1.84.3': `import { AnalyticsBrowser } from '@segment/analytics-next';
    const analytics = AnalyticsBrowser.load({ writeKey: 'wk' });
    analytics.page(); analytics.track('product.viewed', { productId: 'p1' });`,
  '@rudderstack/analytics-js 3.34.1': `import { RudderAnalytics } from '@rudderstack/analytics-js';
    const analytics = new RudderAnalytics(); analytics.load('wk', 'https://data.example.com');
    analytics.page(); analytics.track('product.viewed', { productId: 'p1' });`,
  'posthog-js 1.449.2': `import posthog from 'posthog-js';
    posthog.init('phc_key', { api_host: 'https://eu.i.posthog.com' });
    posthog.capture('$pageview'); posthog.capture('product.viewed', { productId: 'p1' });`,
  '@snowplow/browser-tracker 4.10.1': `import { newTracker, trackPageView, trackStructEvent } from '@snowplow/browser-tracker';
    newTracker('sp', 'https://collector.example.com', { appId: 'shop' });
    trackPageView(); trackStructEvent({ category: 'product', action: 'viewed', label: 'p1' });`,
};

async function sizes() {
  const tag = await readFile(join(root, 'dist/attune.js'));
  const esm = await bundle(`import { createAttune } from './src/index.ts';
    const attune = createAttune({ endpoint: 'https://edge.example.com', writeKey: 'pk_live' });
    attune.page(); attune.track('product.viewed', { productId: 'p1' });`);
  const rows = [
    ['Attune script tag (dist/attune.js, everything)', tag.length, gzip(tag)],
    ['Attune ESM, same usage bundled by esbuild', esm.min, esm.gz],
  ];
  for (const [name, code] of Object.entries(usages)) {
    try {
      const { min, gz } = await bundle(code);
      rows.push([name, min, gz]);
    } catch (error) {
      rows.push([`${name} (failed to bundle: ${String(error).split('\n')[0]})`, Number.NaN, Number.NaN]);
    }
  }
  const base = rows[0][2];
  console.log('### Size: "init + page + track", minified, gzip -9\n');
  console.log('| tracker | minified bytes | min+gzip bytes | × Attune tag |');
  console.log('|---|---:|---:|---:|');
  for (const [name, min, gz] of rows)
    console.log(`| ${name} | ${min} | ${gz} | ${(gz / base).toFixed(1)}× |`);
}

/** Runs in the page: medians of per-call cost for Attune and the baselines. */
async function measureInPage() {
  const now = () => performance.now();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  const props = {
    productId: 'p-123',
    name: 'Trail jacket',
    category: 'outdoor',
    price: 129.9,
    currency: 'EUR',
  };
  const attune = window.attune;
  attune.consent.set({ analytics: true, personalization: true });
  await attune.flush();
  const BLOCK = 100;
  const SAMPLES = 60;
  const perCall = async (fn) => {
    const samples = [];
    for (let s = 0; s < SAMPLES; s++) {
      const t0 = now();
      for (let i = 0; i < BLOCK; i++) fn(i);
      samples.push(((now() - t0) * 1000) / BLOCK);
      // Between blocks (not timed): let stores run and send what was queued, as a real page would.
      await attune.flush();
      await tick();
    }
    return median(samples);
  };
  let sink = 0;
  const empty = (i) => {
    sink += i;
  };
  const template = {
    id: '01JDZZZZZZZZZZZZZZZZZZZZZZ',
    type: 'track',
    name: 'product.viewed',
    timestamp: new Date().toISOString(),
    anonymousId: '01JDZZZZZZZZZZZZZZZZZZZZZY',
    sessionId: '01JDZZZZZZZZZZZZZZZZZZZZZX',
    // The context the tracker adds to every event, so the baseline serializes as much as track() does.
    context: {
      page: { url: location.href, path: location.pathname, referrer: '', title: document.title, search: '' },
      locale: navigator.language,
      timezone: 'Europe/Berlin',
      screen: { width: screen.width, height: screen.height, density: devicePixelRatio },
      campaign: {},
      library: { name: 'attune', version: '0.1.0' },
      consent: {
        categories: { necessary: true, analytics: true, personalization: true, marketing: false },
        policyVersion: '1',
      },
    },
    properties: props,
    schemaVersion: 1,
  };
  const stringify = (i) => {
    sink += JSON.stringify({ ...template, properties: { ...props, i } }).length;
  };
  const results = {};
  results.empty = await perCall(empty);
  results.stringify = await perCall(stringify);
  results.track = await perCall((i) => attune.track('product.viewed', { ...props, i }));
  await attune.flush();

  // A flush of 20 events: the synchronous main-thread part (batching, body, request start).
  const flushes = [];
  const posts = [];
  for (let s = 0; s < 40; s++) {
    for (let i = 0; i < 20; i++) attune.track('product.viewed', { ...props, i });
    await tick();
    const t0 = now();
    const done = attune.flush();
    flushes.push((now() - t0) * 1000);
    await done;
    const batch = Array.from({ length: 20 }, (_, i) => ({ ...template, properties: { ...props, i } }));
    const t1 = now();
    const request = fetch('/v1/collect', {
      method: 'POST',
      body: JSON.stringify({ writeKey: 'pk_bench', sentAt: new Date().toISOString(), batch }),
    });
    posts.push((now() - t1) * 1000);
    await request;
  }
  results.flush = median(flushes);
  results.post = median(posts);
  results.sink = sink;
  return results;
}

async function mainThread() {
  const tag = await readFile(join(root, 'dist/attune.js'));
  const server = createServer(async (request, response) => {
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
    response.setHeader('cross-origin-opener-policy', 'same-origin');
    response.setHeader('cross-origin-embedder-policy', 'require-corp');
    if (request.url === '/attune.js') {
      response.setHeader('content-type', 'text/javascript');
      response.end(tag);
    } else if (request.url?.startsWith('/v1/collect')) {
      for await (const _ of request);
      response.setHeader('content-type', 'application/json');
      response.end('{"accepted":20,"rejected":[]}');
    } else {
      response.setHeader('content-type', 'text/html');
      response.end(`<!doctype html><title>bench</title><script src="/attune.js" data-endpoint="http://127.0.0.1:19150"
        data-write-key="pk_bench" data-flush-at="100000" data-flush-interval="3600000" data-max-queue="100000"></script>`);
    }
  });
  await new Promise((resolve) => server.listen(19150, '127.0.0.1', resolve));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto('http://127.0.0.1:19150/');
    const isolated = await page.evaluate(() => crossOriginIsolated);
    const r = await page.evaluate(measureInPage);
    const us = (x) => x.toFixed(2);
    console.log(
      `\n### Main-thread cost in headless Chromium (median µs; cross-origin isolated: ${isolated})\n`,
    );
    console.log('| operation | median µs | baseline (same page, same run) | baseline µs | ratio |');
    console.log('|---|---:|---|---:|---:|');
    console.log(
      `| attune.track() per call | ${us(r.track)} | JSON.stringify of the same event | ${us(r.stringify)} | ${(r.track / r.stringify).toFixed(1)}× |`,
    );
    console.log(
      `| attune.track() per call | ${us(r.track)} | empty function call | ${us(r.empty)} | ${(r.track / Math.max(r.empty, 0.001)).toFixed(0)}× |`,
    );
    console.log(
      `| attune.flush() of 20 events (sync part) | ${us(r.flush)} | bare fetch(JSON.stringify(20 events)) | ${us(r.post)} | ${(r.flush / r.post).toFixed(1)}× |`,
    );
  } finally {
    await browser.close();
    server.close();
  }
}

await sizes();
await mainThread();
