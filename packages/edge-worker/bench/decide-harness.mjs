// Shared harness for the decide and rewrite benchmarks: starts a fixture Directus (serving a
// generated 10,000-product catalog and accepting the queue consumer's writes), a fixture
// origin shop, and the Worker under `wrangler dev`, all on 127.0.0.1 ports 18790-18799, and
// seeds consented people through the real POST /v1/collect. Everything it starts, it stops.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configuredSites } from '../../../scripts/wrangler-sites.mjs';
import { generateCatalog } from '../src/catalog/fixtures/catalog.ts';
import { isInHoldout } from '../src/decide/holdout.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const PORTS = { worker: 18790, directus: 18791, origin: 18792, inspector: 18793 };
export const WORKER = `http://127.0.0.1:${PORTS.worker}`;
export const SITE_ORIGIN = 'http://127.0.0.1:8787';
export const WRITE_KEY = 'pk_demo_attune';
export const CATALOG = generateCatalog(10_000);
/** How long the fixture origin "thinks" before its first byte, like a server-rendered page (`?think=` overrides). */
export const ORIGIN_THINK_MS = 20;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export function ulid(time = Date.now()) {
  let out = '';
  let t = time;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  for (let i = 0; i < 16; i++) out += CROCKFORD[Math.floor(Math.random() * 32)];
  return out;
}

/** A product page of realistic size (~60 KB) with three slots. */
export function productPage(id) {
  const filler = `<p>${'A detailed paragraph about materials, sizing, care and delivery. '.repeat(12)}</p>\n`;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Product ${id}</title>` +
    `<link rel="stylesheet" href="/styles.css"></head><body><header><nav>Shop</nav></header>\n` +
    `<section class="slot slot-hero" data-attune-slot="hero"><div class="hero-banner"><h1>Origin hero</h1></div></section>\n` +
    `<main><h1>Product ${id}</h1>${filler.repeat(40)}</main>\n` +
    `<section class="slot" data-attune-slot="recommendations" data-attune-product="${id}"><h2>Origin picks</h2></section>\n` +
    `${filler.repeat(30)}<section class="slot" data-attune-slot="promo"><div class="promo-box">Free returns</div></section>\n` +
    `<footer>Fixture shop</footer></body></html>`
  );
}

function listen(server, port) {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', res);
  });
}

function startDirectus() {
  const bodies = {
    products: JSON.stringify({ data: CATALOG.products }),
    slot_content: JSON.stringify({ data: CATALOG.slotContent }),
    trigger_rules: JSON.stringify({ data: CATALOG.triggerRules }),
  };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    // The queue consumer's writes (events, profiles, consent records) succeed, as with a
    // real Directus. Rejected writes made the consumer retry and dead-letter every
    // decision.served event inside the Worker's isolate during the measured requests.
    let body;
    if (req.method === 'GET' && path.startsWith('/items/')) body = bodies[path.slice(7)] ?? '{"data":[]}';
    else if (path === '/attune-sync/events') body = '{"data":{"created":0}}';
    else if (path.startsWith('/items/')) body = '{"data":[]}';
    req.resume();
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(body ?? '{"errors":[]}');
  });
  return listen(server, PORTS.directus).then(() => server);
}

function startOrigin() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/products\/(.+)$/.exec(url.pathname);
    if (!match) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    const page = productPage(match[1]);
    const think = Number(url.searchParams.get('think') ?? ORIGIN_THINK_MS);
    setTimeout(() => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'public, max-age=60',
      });
      // Stream the page in 8 KB chunks, as a server-rendered page arrives.
      let offset = 0;
      const next = () => {
        if (offset >= page.length) {
          res.end();
          return;
        }
        res.write(page.slice(offset, offset + 8192));
        offset += 8192;
        setImmediate(next);
      };
      next();
    }, think);
  });
  return listen(server, PORTS.origin).then(() => server);
}

async function waitFor(url, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The sites of wrangler.toml with per-IP and per-visitor limits out of reach: every request
 * of a bench comes from one address, far faster than the default 50/s. The limiter still
 * runs on every request (what it costs is part of what is measured), as in ingest.bench.mjs.
 */
function benchSites() {
  const toml = readFileSync(resolve(here, '../../../wrangler.toml'), 'utf8');
  const rateLimit = { ipPerSecond: 1e9, ipBurst: 1e9, anonymousPerSecond: 1e9, anonymousBurst: 1e9 };
  return configuredSites(toml).map((site) => ({ ...site, settings: { ...site.settings, rateLimit } }));
}

/** Starts everything; returns a stop function. */
export async function startStack() {
  const directus = await startDirectus();
  const origin = await startOrigin();
  const persist = mkdtempSync(join(tmpdir(), 'attune-bench-'));
  const wrangler = spawn(
    'pnpm',
    [
      'exec',
      'wrangler',
      'dev',
      '-c',
      '../../wrangler.toml',
      '--ip',
      '127.0.0.1',
      '--port',
      String(PORTS.worker),
      '--inspector-port',
      String(PORTS.inspector),
      '--persist-to',
      persist,
      '--var',
      `DIRECTUS_URL:http://127.0.0.1:${PORTS.directus}`,
      '--var',
      `ORIGIN_URL:http://127.0.0.1:${PORTS.origin}`,
      // Its own secrets: a clean clone has no .dev.vars (`./attune up` writes one).
      '--var',
      `ATTUNE_SITE_SECRETS:${JSON.stringify({ demo: { identitySecret: 'bench-identity-secret', serverKey: 'sk_bench_server_key' } })}`,
      '--var',
      `ATTUNE_SITES:${JSON.stringify(benchSites())}`,
      '--var',
      'DIRECTUS_TOKEN:bench-directus-token',
      '--var',
      'ADMIN_TOKEN:bench-admin-token',
      '--var',
      'HOOK_SECRET:bench-hook-secret',
      '--log-level',
      'error',
    ],
    { cwd: resolve(here, '..'), stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stopping = false;
  // Forward wrangler's errors while it runs; its shutdown noise is not a benchmark failure.
  wrangler.stderr.on('data', (chunk) => {
    if (!stopping) process.stderr.write(chunk);
  });
  const stop = async () => {
    stopping = true;
    try {
      process.kill(-wrangler.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    directus.close();
    origin.close();
    await new Promise((r) => setTimeout(r, 500));
    rmSync(persist, { recursive: true, force: true });
  };
  try {
    await waitFor(`${WORKER}/healthz`, 90_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

/** Seeds `count` consented people (not in the holdout) with some product views; returns their anonymous ids. */
export async function seedPeople(count, prefix) {
  const ids = [];
  for (let i = 0; ids.length < count; i++) {
    const id = `${prefix}-${i}-bench-visitor`;
    if (isInHoldout(`anon:${id}`, 10)) continue;
    ids.push(id);
  }
  for (const [n, anonymousId] of ids.entries()) {
    const consent = {
      categories: { necessary: true, analytics: true, personalization: true, marketing: false },
      policyVersion: '1',
    };
    const now = Date.now();
    const batch = [
      {
        id: ulid(now - 60_000),
        type: 'consent',
        name: 'consent.updated',
        timestamp: new Date(now - 60_000).toISOString(),
        anonymousId,
        context: { consent },
        properties: consent,
        schemaVersion: 1,
      },
    ];
    for (let v = 0; v < 8; v++) {
      const p = CATALOG.products[(n * 37 + v * 101) % CATALOG.products.length];
      batch.push({
        id: ulid(now - 50_000 + v * 1000),
        type: 'track',
        name: 'product.viewed',
        timestamp: new Date(now - 50_000 + v * 1000).toISOString(),
        anonymousId,
        context: { consent },
        properties: { productId: p.id, category: p.category, tags: p.tags },
        schemaVersion: 1,
      });
    }
    const res = await fetch(`${WORKER}/v1/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: SITE_ORIGIN },
      body: JSON.stringify({ writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch }),
    });
    if (!res.ok) throw new Error(`seeding failed: ${res.status} ${await res.text()}`);
  }
  return ids;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean,
  };
}

export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
