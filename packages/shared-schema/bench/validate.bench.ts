/**
 * Benchmark: validating a realistic 50-event collect body with parseCollectBody, side by
 * side in the same run with two baselines on the same text — plain JSON.parse (the floor
 * any server pays) and a zod-only parse of the envelope (what the schema alone costs,
 * without the JSON-map limits, typed properties, timestamp window and byte checks).
 * Run: `pnpm --filter @attune/shared-schema bench` (one Node process, one core).
 * Prints a markdown table; figures vary by machine, ratios are what to compare.
 */
import { z } from 'zod';
import { CustomerActionSchema, parseCollectBody, parseCollectRequest } from '../src/index.ts';

const NOW = Date.parse('2026-11-26T12:00:00.000Z');
const EVENTS = 50;

const context = (path: string, title: string) => ({
  page: {
    url: `https://shop.example.com${path}?utm_source=newsletter&utm_medium=email`,
    path,
    referrer: 'https://www.google.com/',
    title,
    search: '?utm_source=newsletter&utm_medium=email',
  },
  locale: 'de-DE',
  timezone: 'Europe/Berlin',
  screen: { width: 1440, height: 900, density: 2 },
  campaign: { source: 'newsletter', medium: 'email', name: 'autumn_sale' },
  library: { name: '@attune/browser-sdk', version: '0.1.0' },
  consent: {
    categories: { necessary: true, analytics: true, personalization: true, marketing: false },
    policyVersion: '2026-11',
  },
});

const product = (i: number) => ({
  productId: `prod-${1000 + i}`,
  sku: `SKU-${1000 + i}-M`,
  name: ['Trail Jacket', 'Merino Hiking Socks', 'Alpine Backpack 30L', 'Down Vest'][i % 4],
  category: ['Jackets', 'Socks', 'Backpacks', 'Vests'][i % 4],
  tags: ['outdoor', 'autumn', i % 2 ? 'waterproof' : 'merino'],
  price: [149.9, 19.5, 89, 119][i % 4],
  currency: 'EUR',
  quantity: 1 + (i % 2),
  position: i % 12,
});

/** A shopping session: browse, search, list, view, add to cart, check out, buy, with decisions and a custom event. */
function session(): unknown[] {
  const kinds: [string, string, (i: number) => Record<string, unknown>][] = [
    ['page', 'page.viewed', (i) => ({ path: `/c/jackets?page=${i}`, title: 'Jackets – Attune Outdoor' })],
    ['track', 'product.viewed', (i) => ({ ...product(i), brand: 'Attune Outdoor', variant: 'Blue / M' })],
    [
      'track',
      'product.list_viewed',
      (i) => ({
        listId: `list-${i}`,
        category: 'Jackets',
        products: [0, 1, 2, 3].map((k) => product(i + k)),
      }),
    ],
    ['track', 'search.performed', (i) => ({ query: `rain jacket size ${i % 5}`, results: 24 + i })],
    ['track', 'cart.item.added', (i) => ({ ...product(i), cartId: 'cart-88213' })],
    [
      'track',
      'decision.served',
      (i) => ({
        decisionId: `dec-${i}`,
        slot: 'recommendations',
        variant: 'covisit-v2',
        holdout: false,
        items: ['prod-1001', 'prod-1002', 'prod-1003'],
      }),
    ],
    [
      'track',
      'video.playback.started',
      () => ({
        video_player: 'youtube',
        position: 0,
        total_length: 392,
        quality: 'hd1080',
        content_asset_ids: ['0129370'],
      }),
    ],
    [
      'track',
      'checkout.started',
      (i) => ({
        cartId: 'cart-88213',
        value: 189.4,
        currency: 'EUR',
        products: [product(i), product(i + 1)],
      }),
    ],
    [
      'track',
      'order.completed',
      (i) => ({
        orderId: `order-${i}`,
        total: 189.4,
        currency: 'EUR',
        discount: 10,
        coupon: 'AUTUMN10',
        products: [product(i), product(i + 1)],
      }),
    ],
    [
      'consent',
      'consent.updated',
      () => ({
        categories: { necessary: true, analytics: true, personalization: true, marketing: false },
        policyVersion: '2026-11',
        source: 'banner',
      }),
    ],
  ];
  return Array.from({ length: EVENTS }, (_, i) => {
    const kind = kinds[i % kinds.length];
    if (!kind) throw new Error('unreachable');
    const [type, name, properties] = kind;
    return {
      id: `01JDQ3Z8Y9K2M4N6P8R0S2T${String(i).padStart(3, '0')}`,
      type,
      name,
      timestamp: new Date(NOW - (EVENTS - i) * 7_000).toISOString(),
      anonymousId: '9b2f6c1e-7a4d-4e8b-b1c3-5d6e7f8a9b0c',
      sessionId: 's-01JDQ40000',
      context: context(`/products/p-${i}`, `Product ${i} – Attune Outdoor`),
      properties: properties(i),
      schemaVersion: 1,
    };
  });
}

const text = JSON.stringify({
  writeKey: 'wk_live_4f2a9c',
  sentAt: new Date(NOW).toISOString(),
  batch: session(),
});

// The envelope as zod alone sees it: no JSON-map limits, no per-name properties, no clock window, no byte counts.
const ZodOnlyEnvelope = z.object({
  writeKey: z.string().min(1).max(128),
  sentAt: z.iso.datetime({ offset: true }).optional(),
  batch: z.array(CustomerActionSchema).min(1).max(100),
});

const check = parseCollectBody(text, { now: NOW });
if (!check.ok || check.events.length !== EVENTS || check.rejected.length > 0) {
  throw new Error(`the benchmark batch must be valid: ${JSON.stringify(check).slice(0, 500)}`);
}
if (!ZodOnlyEnvelope.safeParse(JSON.parse(text)).success)
  throw new Error('zod-only baseline rejects the batch');

interface Case {
  name: string;
  run: () => unknown;
}
const parsed: unknown = JSON.parse(text);
const cases: Case[] = [
  { name: 'parseCollectBody (text → validated events)', run: () => parseCollectBody(text, { now: NOW }) },
  {
    name: 'parseCollectRequest (validation of the parsed body)',
    run: () => parseCollectRequest(parsed, { now: NOW }),
  },
  { name: 'baseline: JSON.parse only', run: () => JSON.parse(text) },
  {
    name: 'baseline: JSON.parse + zod-only envelope parse',
    run: () => ZodOnlyEnvelope.safeParse(JSON.parse(text)),
  },
];

let sink: unknown;
/**
 * Runs a case for about `ms` milliseconds of CPU time; returns CPU nanoseconds per call.
 * CPU time (process.cpuUsage), not wall-clock: on a machine shared with other work the
 * wall clock counts time this process was not even running.
 */
function measure(c: Case, ms: number): number {
  let calls = 0;
  const start = process.cpuUsage();
  let used = 0;
  while (used < ms * 1000) {
    for (let i = 0; i < 20; i++) sink = c.run();
    calls += 20;
    const d = process.cpuUsage(start);
    used = d.user + d.system;
  }
  return (used * 1000) / calls;
}

const ROUNDS = 9;
for (const c of cases) measure(c, 400); // warm-up: let the JIT settle
const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved rounds, so drift in machine load hits every case alike.
  for (const c of cases) samples.get(c.name)?.push(measure(c, 250));
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const bytes = new TextEncoder().encode(text).byteLength;
const full = median(samples.get(cases[0]?.name ?? '') ?? []);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
console.log(
  `\nValidation of one ${EVENTS}-event collect body (${fmt(bytes)} bytes), Node ${process.version}, one core,`,
);
console.log(`median of ${ROUNDS} interleaved rounds of ~250 ms CPU time each (process.cpuUsage):\n`);
console.log('| case | µs per body | µs per event | events/s | time vs full validation |');
console.log('|---|---:|---:|---:|---:|');
for (const c of cases) {
  const ns = median(samples.get(c.name) ?? []);
  console.log(
    `| ${c.name} | ${fmt(ns / 1000, 1)} | ${fmt(ns / 1000 / EVENTS, 2)} | ${fmt((1e9 / ns) * EVENTS)} | ${fmt(ns / full, 2)}× |`,
  );
}
const validationOnly = median(samples.get(cases[1]?.name ?? '') ?? []);
const jsonOnly = median(samples.get(cases[2]?.name ?? '') ?? []);
const zodOnly = median(samples.get(cases[3]?.name ?? '') ?? []);
console.log(
  `\nFull validation costs ${fmt(full / jsonOnly, 1)}× a bare JSON.parse and ${fmt(full / zodOnly, 2)}× a zod-only envelope parse.`,
);
console.log(`Validation after JSON.parse costs ${fmt(validationOnly / jsonOnly, 2)}× the JSON.parse itself.`);
const rate = (ns: number) => (1e9 / ns) * EVENTS;
console.log(
  `Target >= 100,000 events/s: ${rate(full) >= 100_000 ? 'met' : 'NOT met'} end to end (${fmt(rate(full))}/s), ` +
    `${rate(validationOnly) >= 100_000 ? 'met' : 'NOT met'} for validation alone (${fmt(rate(validationOnly))}/s).`,
);
console.log(
  `(load average during the run: ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')} on ${(await import('node:os')).availableParallelism()} cores)`,
);
if (sink === undefined) console.log('');
