// Ingest benchmark: the real Worker (POST /v1/collect, 20-event batches from many
// simulated people) and a trivial Hono Worker answering 204, both under `wrangler dev`
// (local workerd) in the same run, loaded over loopback with autocannon — optionally a
// third target, the Worker built from another source tree (BENCH_BASELINE_MAIN), for A/B.
// Each Worker is loaded on two paths (BENCH_PATH): through wrangler dev's --port, where its
// dev proxy forwards every request, and direct to the Worker's own workerd socket, as a
// deployed Worker is reached. Measurements, each as round-robin slices across the targets:
// saturation (16 closed-loop connections: requests/s, accepted events/s, p50/p99, CPU per
// batch from /proc — utime+stime of the workerd processes and of the whole wrangler tree,
// over the run, ÷ requests answered) and latency at a fixed offered rate below saturation,
// for active visitors (ProfileDO in memory) and returning ones (ProfileDO evicted).
// Run twice: first with wrangler dev's local trace collector and data explorer off
// (X_LOCAL_OBSERVABILITY / X_LOCAL_EXPLORER = false), then with wrangler's defaults. The
// collector streams every span of a Worker (each request, Durable Object call, SQL
// statement, queue send) to a collector in the same single-threaded workerd, and the
// explorer wraps every SQLite Durable Object class: developer tools that cost the Worker
// in proportion to the work it does and that a deployed Worker does not run, while the
// trivial Worker, which does nothing, barely pays for them. BENCH_DEV_TOOLS=off|on runs one.
// BENCH_PROFILE=<prefix> also takes a V8 CPU profile of each Worker isolate over CDP.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import {
  cpuMs,
  findWorkerd,
  processTree,
  userWorkerOrigin,
  waitReady,
  wranglerServers,
} from './wrangler-dev.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
/** `off` (wrangler dev's trace collector and explorer off), `on` (its defaults), or unset: both, in turn. */
const DEV_TOOLS = process.env.BENCH_DEV_TOOLS;
/**
 * Where the load goes (BENCH_PATH, comma-separated; both by default): `proxy`, wrangler
 * dev's --port, whose dev proxy forwards every request to the Worker, or `direct`, the
 * Worker's own workerd socket (see userWorkerOrigin), as a deployed Worker is reached.
 */
const PATHS = (process.env.BENCH_PATH ?? 'proxy,direct').split(',');
/** The run with the dev tools on has its own ports: the first run's servers may still be shutting down. */
const PORT_BASE = DEV_TOOLS === 'on' ? 18770 : 18780;
const WORKER_PORT = PORT_BASE;
const TRIVIAL_PORT = PORT_BASE + 1;
const INSPECTOR_PORTS = [PORT_BASE + 2, PORT_BASE + 3];
/**
 * Optional: the Worker built from another source tree (BENCH_BASELINE_MAIN = its src/index.ts), for an A/B in one run.
 * BENCH_MAIN swaps the source of the second target too, so an A/B can be run again with the two in each other's place.
 */
const BASELINE_MAIN = process.env.BENCH_BASELINE_MAIN;
const BASELINE_PORT = PORT_BASE + 4;
const BASELINE_INSPECTOR_PORT = PORT_BASE + 5;
/** The stand-in for Directus the Workers read their site's configuration from (see standInDirectus). */
const DIRECTUS_PORT = PORT_BASE + 6;
/** The fixed offered rate (requests/s) of the latency runs, below both Workers' saturation. */
const RATE = Number(process.env.BENCH_RATE ?? 25);
const RATE_DURATION_S = Number(process.env.BENCH_RATE_DURATION_S ?? 20);
/** Each measured run is split into this many round-robin slices per target (see interleaved). */
const SLICES = Number(process.env.BENCH_SLICES ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PEOPLE = Number(process.env.BENCH_PEOPLE ?? 500);
const BATCH = 20;
const ORIGIN = 'http://127.0.0.1:3000';
/** Answers other than 2xx, by status, over the whole run (the trivial Worker answers 204 only). */
const nonOkStatuses = new Map();
/**
 * BENCH_TRACE=<file>: every answer of the fixed-rate runs, one line each (target URL, when
 * it was sent in ms of this process's clock, latency in ms), under a `# <workload>` line:
 * to see when the slow ones came (a stall shared by every target, or one target's own).
 * The run with wrangler's defaults writes `<file>.defaults`.
 */
const trace = process.env.BENCH_TRACE ? [] : undefined;
const WRITE_KEY = 'pk_bench_attune';
const ADMIN_TOKEN = `bench-${randomBytes(8).toString('hex')}`;

const servers = wranglerServers('attune-bench-ingest-', DEV_TOOLS);
const { work } = servers;
const cleanup = servers.stop;

/** The Worker's config for the bench: the real bindings, minus the queue consumers and cron (not what we measure). */
function benchConfig(label, main) {
  let toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  // Both consumers: the EVENTS queue's and its dead-letter queue's.
  toml = toml.replace(/\[\[queues\.consumers\]\][\s\S]*?\n\n/g, '\n');
  toml = toml.replace(/\[triggers\][\s\S]*?\n\n/, '\n');
  // The config moves to a temp dir: make its repository-relative entry point absolute.
  toml = toml.replace(
    /^main = "([^"]+)"$/m,
    (_m, path) => `main = ${JSON.stringify(main ? resolve(main) : join(root, path))}`,
  );
  const sites = [
    {
      id: 'bench',
      writeKey: WRITE_KEY,
      allowedOrigins: [ORIGIN],
      // The limiter still runs on every request; the limits are just out of reach.
      settings: {
        rateLimit: { ipPerSecond: 1e9, ipBurst: 1e9, anonymousPerSecond: 1e9, anonymousBurst: 1e9 },
      },
    },
  ];
  toml = toml.replace(/^ATTUNE_SITES = .*$/m, `ATTUNE_SITES = '${JSON.stringify(sites)}'`);
  toml = toml.replace(/^DIRECTUS_URL = .*$/m, `DIRECTUS_URL = "http://127.0.0.1:${DIRECTUS_PORT}"`);
  const dir = join(work, `config-${label}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'wrangler.toml'), toml);
  writeFileSync(
    join(dir, '.dev.vars'),
    [
      `ATTUNE_SITE_SECRETS=${JSON.stringify({ bench: { identitySecret: 'bench-identity-secret', serverKey: 'sk_bench_server_key' } })}`,
      `ADMIN_TOKEN=${ADMIN_TOKEN}`,
      'HOOK_SECRET=bench',
      'DIRECTUS_TOKEN=bench',
    ].join('\n'),
  );
  return join(dir, 'wrangler.toml');
}

const startWrangler = servers.start;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function ulid(now) {
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const r = randomBytes(16);
  for (let i = 0; i < 16; i++) out += CROCKFORD[r[i] & 31];
  return out;
}

const consent = {
  categories: { necessary: true, analytics: true, personalization: true, marketing: true },
  policyVersion: '1',
};
const categories = ['shoes', 'hats', 'bags', 'coats', 'socks', 'belts'];
let seq = 0;

/** Simulated people taking turns: each call names the next of `size` people. */
function peoplePool(prefix, size) {
  let next = 0;
  return () => `${prefix}-${next++ % size}`;
}

/** One 20-event batch from `person`: page and product views, cart adds. */
function batchBody(person) {
  seq++;
  const now = Date.now();
  const timestamp = new Date(now).toISOString();
  const batch = [];
  for (let i = 0; i < BATCH; i++) {
    const category = categories[(seq + i) % categories.length];
    const productId = `p-${category}-${(seq * 7 + i) % 50}`;
    const kind = i % 10 === 9 ? 'cart.item.added' : i % 4 === 0 ? 'page.viewed' : 'product.viewed';
    batch.push({
      id: ulid(now),
      type: kind === 'page.viewed' ? 'page' : 'track',
      name: kind,
      timestamp,
      anonymousId: person,
      sessionId: `s-${person}`,
      context: {
        consent,
        page: { path: `/p/${productId}`, url: `${ORIGIN}/p/${productId}` },
        locale: 'en-GB',
      },
      properties:
        kind === 'page.viewed'
          ? { path: `/p/${productId}` }
          : { productId, category, price: 19.5, currency: 'EUR', tags: [category] },
      schemaVersion: 1,
    });
  }
  return JSON.stringify({ writeKey: WRITE_KEY, sentAt: timestamp, batch });
}

/**
 * A CPU profile of the Worker's isolate (the Worker and its Durable Objects share it under
 * workerd) over the V8 inspector that `wrangler dev --inspector-port` exposes, via CDP:
 * Profiler.enable/start, then stop() returns the profile.
 */
async function startProfiler(inspectorPort) {
  const list = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const target = list[0];
  if (!target) throw new Error('inspector lists no target');
  // wrangler's inspector proxy only accepts DevTools connections from a local Origin.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { Origin: 'http://localhost' } });
  let nextId = 0;
  const waiting = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.reject(new Error(JSON.stringify(msg.error)));
    else w.resolve(msg.result);
  };
  await new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = rej;
  });
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      waiting.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 250 });
  await send('Profiler.start');
  return {
    async stop() {
      const { profile } = await send('Profiler.stop');
      // The bundle's source, to name the module of each line (esbuild marks modules with `// path` comments).
      await send('Debugger.enable');
      const sources = new Map();
      for (const node of profile.nodes) {
        const { scriptId, url } = node.callFrame;
        if (!url || sources.has(scriptId)) continue;
        try {
          sources.set(scriptId, (await send('Debugger.getScriptSource', { scriptId })).scriptSource);
        } catch {
          sources.set(scriptId, '');
        }
      }
      await send('Debugger.disable');
      ws.close();
      for (const node of profile.nodes) {
        const text = sources.get(node.callFrame.scriptId);
        if (text) node.callFrame.module = moduleAt(text, node.callFrame.lineNumber);
      }
      return profile;
    },
  };
}

const moduleMarks = new Map();
/** The source module a line of an esbuild bundle came from (the last `// path` marker above it). */
function moduleAt(text, line) {
  let marks = moduleMarks.get(text);
  if (!marks) {
    marks = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^\/\/ ((?:\.\.\/)*(?:src|node_modules|packages)\/\S+|[\w@./-]+\.(?:ts|js|mjs))$/.exec(
        lines[i],
      );
      if (m) marks.push([i, m[1].replace(/^(\.\.\/)+/, '')]);
    }
    moduleMarks.set(text, marks);
  }
  let found = '(bundle)';
  for (const [i, name] of marks) {
    if (i > line) break;
    found = name;
  }
  return found;
}

/** Self time per function and per file of a CPU profile, largest first. */
function summarizeProfile(profile, top = 30) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const byFunction = new Map();
  const byFile = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url
      ? (node.callFrame.module ?? url).replace(/^.*?(src\/|node_modules\/)/, '$1')
      : `(native: ${functionName || 'anonymous'})`;
    const fn = `${functionName || '(anonymous)'} ${file}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
    if (functionName !== '(idle)') total += us;
  }
  const rows = (m) =>
    [...m]
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `| ${k} | ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)} % |`)
      .join('\n');
  return `| function | self ms | share |\n|---|---:|---:|\n${rows(byFunction)}\n\n| file | self ms | share |\n|---|---:|---:|\n${rows(byFile)}\n\nnon-idle sampled JS time: ${(total / 1000).toFixed(0)} ms`;
}

/**
 * One autocannon run against `url`; `rate` (requests/s over all connections) fixes the
 * offered rate; `amount` (a number of requests) replaces the duration. Every answer's
 * latency is appended to `latencies` (ms), so slices of one target can be merged into exact percentiles.
 */
function autocannonRun(url, nextPerson, { duration, rate, latencies = [], amount } = {}) {
  return new Promise((res, rej) => {
    const instance = autocannon(
      {
        url,
        connections: CONNECTIONS,
        ...(amount ? { amount } : { duration }),
        ...(rate ? { overallRate: rate } : {}),
        headers: { origin: ORIGIN, 'content-type': 'text/plain;charset=UTF-8' },
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => ({ ...req, body: batchBody(nextPerson()) }),
          },
        ],
      },
      (err, result) => (err ? rej(err) : res(result)),
    );
    instance.on('response', (_client, status, _bytes, responseTime) => {
      latencies.push(responseTime);
      if (status < 200 || status >= 300) nonOkStatuses.set(status, (nonOkStatuses.get(status) ?? 0) + 1);
    });
  });
}

/**
 * Open-loop load at a fixed rate: one request every 1000/rate ms, on schedule whether or
 * not earlier ones were answered (no coordinated omission, no bursts: autocannon's
 * overallRate releases each second's quota at once over all connections, which measures
 * the queueing of those bursts). Latency is from send to the last byte of the answer.
 * node:http with keep-alive sockets rather than fetch: fetch's own overhead in this process
 * (about 1.5 ms a request here, more in its tail) would count as the Workers' latency.
 */
async function openLoop(url, nextPerson, seconds, rate, latencies) {
  const interval = 1000 / rate;
  const start = performance.now();
  const inflight = [];
  const result = { requests: { total: 0 }, non2xx: 0, errors: 0, timeouts: 0 };
  for (let sent = 0; ; sent++) {
    const due = start + sent * interval;
    if (due - start >= seconds * 1000) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const body = batchBody(nextPerson());
    const sentAt = performance.now();
    inflight.push(
      post(url, body)
        .then((status) => {
          latencies.push(performance.now() - sentAt);
          trace?.push(`${url}\t${sentAt.toFixed(1)}\t${(performance.now() - sentAt).toFixed(2)}`);
          result.requests.total++;
          if (status < 200 || status >= 300) {
            result.non2xx++;
            nonOkStatuses.set(status, (nonOkStatuses.get(status) ?? 0) + 1);
          }
        })
        .catch(() => {
          result.errors++;
        }),
    );
  }
  await Promise.all(inflight);
  return result;
}

const keepAlive = new http.Agent({ keepAlive: true });

/** POSTs `body` to `url` and resolves with the status once the whole answer has arrived. */
function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: keepAlive,
        headers: {
          origin: ORIGIN,
          'content-type': 'text/plain;charset=UTF-8',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Whether `t` is the first of `targets` on its server (the targets of one server share its Worker's state). */
function isFirstOfServer(targets, t) {
  return t === targets.find((o) => o.server === t.server);
}

function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/**
 * Runs every target for `seconds` in total, in SLICES round-robin slices (trivial, ingest,
 * …, trivial, ingest, …), so a change in the machine's load during the run hits all
 * targets alike: on a shared machine a run of one target after the other compares
 * different moments. Returns per target: requests/s, accepted events/s, latency
 * percentiles over all answers, CPU per request from /proc, and an optional profile.
 */
async function interleaved(targets, seconds, rate, pool = 'busy') {
  if (rate && trace) trace.push(`# ${pool}`);
  const slice = seconds / SLICES;
  const acc = new Map(
    targets.map((t) => [
      t,
      { answered: 0, non2xx: 0, errors: 0, latencies: [], cpu: 0, treeCpu: 0, accepted: 0 },
    ]),
  );
  const profilers = new Map();
  // One profile per Worker: its targets on both paths share its isolate (and inspector).
  if (process.env.BENCH_PROFILE && !rate)
    for (const t of targets.filter((t) => isFirstOfServer(targets, t)))
      profilers.set(t, await startProfiler(t.inspectorPort));
  for (let i = 0; i < SLICES; i++) {
    for (const t of targets) {
      const a = acc.get(t);
      const tree = processTree(t.server.child.pid);
      const treeCpu = () => tree.reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
      const workerdCpu = () => t.workerd.reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
      const acceptedBefore = t.stats ? await t.stats() : 0;
      const before = workerdCpu();
      const beforeTree = treeCpu();
      const result = rate
        ? await openLoop(t.url, t.people[pool], slice, rate, a.latencies)
        : await autocannonRun(t.url, t.people[pool], { duration: slice, latencies: a.latencies });
      a.cpu += workerdCpu() - before;
      a.treeCpu += treeCpu() - beforeTree;
      if (t.stats) a.accepted += (await t.stats()) - acceptedBefore;
      a.answered += result.requests.total;
      a.non2xx += result.non2xx;
      a.errors += result.errors + result.timeouts;
    }
  }
  for (const [t, profiler] of profilers) {
    const profile = await profiler.stop();
    const file = `${process.env.BENCH_PROFILE}-${t.label.replace(/\W+/g, '_')}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.error(`\nCPU profile of ${t.label} (${file}):\n${summarizeProfile(profile)}\n`);
  }
  const out = new Map();
  for (const [t, a] of acc) {
    const sorted = a.latencies.sort((x, y) => x - y);
    out.set(t, {
      rps: a.answered / seconds,
      eventsPerSecond: t.stats ? a.accepted / seconds : Number.NaN,
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1],
      answered: a.answered,
      non2xx: a.non2xx,
      errors: a.errors,
      cpuPerRequestMs: a.cpu / Math.max(1, a.answered),
      treeCpuPerRequestMs: a.treeCpu / Math.max(1, a.answered),
    });
  }
  return out;
}

/** Accepted events so far, from the Worker's outcome counters (flushed to the stats object). */
function acceptedCounter(port) {
  return async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/admin/stats`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return (await res.json()).counters.accepted;
  };
}

async function probe(url) {
  // A sanity request: the bench must measure accepted events, not errors.
  const res = await fetch(url, {
    method: 'POST',
    headers: { origin: ORIGIN },
    body: batchBody('bench-probe'),
  });
  const body = await res.json();
  if (res.status !== 200 || body.accepted !== BATCH)
    throw new Error(`probe of ${url} failed: ${res.status} ${JSON.stringify(body)}`);
}

/**
 * A stand-in for Directus, answering every read with no rows: the site then has the built-in
 * consent categories and an empty catalog, as it had when the Workers could not reach
 * Directus at all (before the sixteenth session), but a read succeeds, as it does for a
 * deployed Worker. Unreachable, the Worker reads again every 5 s and a request waits for
 * it; reachable, a busy isolate reads ahead in the background (src/config/consent-config.ts).
 */
function standInDirectus() {
  const server = http.createServer((req, res) => {
    server.reads = (server.reads ?? 0) + 1;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"data":[]}');
    });
  });
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(DIRECTUS_PORT, '127.0.0.1', () => res(server));
  });
}

async function main() {
  const directus = await standInDirectus();
  const servers = [];
  servers.push({
    label: 'trivial Hono Worker (204)',
    server: startWrangler(
      join(here, 'trivial', 'wrangler.toml'),
      TRIVIAL_PORT,
      INSPECTOR_PORTS[1],
      'trivial',
    ),
    port: TRIVIAL_PORT,
    ready: `http://127.0.0.1:${TRIVIAL_PORT}/`,
    inspectorPort: INSPECTOR_PORTS[1],
  });
  servers.push({
    label: 'Attune /v1/collect',
    server: startWrangler(
      benchConfig('worker', process.env.BENCH_MAIN),
      WORKER_PORT,
      INSPECTOR_PORTS[0],
      'worker',
    ),
    port: WORKER_PORT,
    ready: `http://127.0.0.1:${WORKER_PORT}/healthz`,
    inspectorPort: INSPECTOR_PORTS[0],
    stats: acceptedCounter(WORKER_PORT),
  });
  if (BASELINE_MAIN) {
    servers.push({
      label: `Attune /v1/collect at ${process.env.BENCH_BASELINE_LABEL ?? 'baseline'}`,
      server: startWrangler(
        benchConfig('baseline', BASELINE_MAIN),
        BASELINE_PORT,
        BASELINE_INSPECTOR_PORT,
        'baseline',
      ),
      port: BASELINE_PORT,
      ready: `http://127.0.0.1:${BASELINE_PORT}/healthz`,
      inspectorPort: BASELINE_INSPECTOR_PORT,
      stats: acceptedCounter(BASELINE_PORT),
    });
  }
  await Promise.all(servers.map((s) => waitReady(s.ready, s.server)));
  // One target per server and path; each has its own people, so every target sees the
  // visitor pattern the workload describes (a shared turn order would not).
  const targets = [];
  // The fixed-rate runs model two kinds of visitor. Active ones send again within
  // seconds (the tag flushes every 5 s while someone browses), so their ProfileDO is in
  // memory: every one of them gets a batch in each slice of the run. Returning ones send
  // one batch after being away: their ProfileDO exists (written during the warm-up) but
  // workerd has evicted it (it does after about 10 s idle), so the batch loads it again.
  const activePeople = Math.round((RATE * RATE_DURATION_S) / SLICES);
  const paths = [...PATHS];
  if (paths.includes('direct') && !existsSync('/proc/net/tcp')) {
    // The Worker's own socket is found from /proc (Linux): elsewhere only the proxy path runs.
    console.log("(no /proc here: the direct path is skipped; loads go through wrangler's dev proxy only)\n");
    paths.splice(paths.indexOf('direct'), 1);
  }
  for (const path of paths) {
    for (const s of servers) {
      const origin =
        path === 'direct' ? await userWorkerOrigin(s.server.child.pid) : `http://127.0.0.1:${s.port}`;
      const t = {
        ...s,
        path,
        url: `${origin}/v1/collect`,
        workerd: findWorkerd(s.server.child.pid),
        people: {
          busy: peoplePool('bench-person', PEOPLE),
          active: peoplePool('bench-person', activePeople),
          returning: peoplePool(`returning-${path}`, RATE * RATE_DURATION_S),
        },
      };
      if (t.stats) await probe(t.url);
      targets.push(t);
    }
  }
  if (process.env.BENCH_DEBUG) console.error(targets.map((t) => [t.label, t.path, t.url, t.workerd]));

  if (process.env.BENCH_HOLD) {
    console.log('holding for probes on', WORKER_PORT);
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD) * 1000));
  }
  // Warm-up (compile, JIT), then the measured runs. An ingest target first gets one batch
  // from every simulated person: the saturation runs measure the steady state of people
  // whose ProfileDO is in memory. A person's first batch also creates their Durable Object
  // (about 2 ms more CPU per batch here); workerd evicts a Durable Object idle for about
  // 10 s, so in a short run started cold, up to PEOPLE of the batches would be first ones.
  // The returning visitors get their batch now too, and are then left idle until their run.
  for (const t of targets) {
    if (t.stats && isFirstOfServer(targets, t)) {
      await autocannonRun(t.url, t.people.busy, { amount: PEOPLE });
    }
    if (t.stats) await autocannonRun(t.url, t.people.returning, { amount: RATE * RATE_DURATION_S });
    await autocannonRun(t.url, t.people.busy, { duration: 2 });
  }
  const saturation = await interleaved(targets, DURATION_S);
  const active = await interleaved(targets, RATE_DURATION_S, RATE, 'active');
  const returning = await interleaved(targets, RATE_DURATION_S, RATE, 'returning');

  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const name = (t) =>
    `${t.label}, ${t.path === 'direct' ? 'direct to its workerd' : "through wrangler's dev proxy"}`;
  console.log(
    `Saturation: autocannon, ${CONNECTIONS} closed-loop connections, ${DURATION_S} s per target after a warm-up (a batch from each of the ${PEOPLE} simulated people to the ingest Workers, then 2 s each), run as ${SLICES} round-robin slices of ${DURATION_S / SLICES} s per target (so load changes on the machine hit every target alike), ${BATCH}-event batches from ${PEOPLE} simulated people, loopback, wrangler dev (local workerd) on a shared 2-core machine. Paths: through wrangler dev's --port, where its dev proxy (a Durable Object in a second workerd) forwards every request, and direct to the Worker's own workerd socket, as a deployed Worker is reached without that proxy.\n`,
  );
  console.log(
    '| target | requests/s | accepted events/s | p50 ms | p99 ms | non-2xx | errors | workerd CPU ms / request (both processes) | wrangler tree CPU ms / request |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const t of targets) {
    const r = saturation.get(t);
    console.log(
      `| ${name(t)} | ${f(r.rps, 0)} | ${t.stats ? f(r.eventsPerSecond, 0) : '—'} | ${f(r.p50, 0)} | ${f(r.p99, 0)} | ${r.non2xx} | ${r.errors} | ${f(r.cpuPerRequestMs, 2)} | ${f(r.treeCpuPerRequestMs, 2)} |`,
    );
  }
  console.log('');
  console.log('| ratio (same run) | value |');
  console.log('|---|---:|');
  for (const path of paths) {
    const [base, ...ingests] = targets.filter((t) => t.path === path).map((t) => [t, saturation.get(t)]);
    if (base === undefined) continue;
    const [, b] = base;
    const via = path === 'direct' ? 'direct' : 'through the dev proxy';
    for (const [t, r] of ingests) {
      const what = t.label.replace('Attune /v1/collect', 'ingest');
      console.log(`| ${what} requests/s ÷ trivial requests/s, ${via} | ${f(r.rps / b.rps, 2)} |`);
      console.log(`| ${what} p99 ÷ trivial p99 (saturation), ${via} | ${f(r.p99 / Math.max(1, b.p99), 2)} |`);
      console.log(
        `| workerd CPU per 20-event batch, ${what} − trivial (ms), ${via} | ${f(r.cpuPerRequestMs - b.cpuPerRequestMs, 2)} |`,
      );
      console.log(
        `| wrangler tree CPU per 20-event batch, ${what} − trivial (ms), ${via} | ${f(r.treeCpuPerRequestMs - b.treeCpuPerRequestMs, 2)} |`,
      );
    }
  }
  console.log(
    `\nFixed offered rate: ${RATE} requests/s (BENCH_RATE), open loop (one request every ${(1000 / RATE).toFixed(0)} ms on schedule, answered or not), ${RATE_DURATION_S} s per target in ${SLICES} round-robin slices, the same rate for every target, below each one's saturation. Two workloads: active visitors (${Math.round((RATE * RATE_DURATION_S) / SLICES)} people, each sending a batch in every slice, so their ProfileDO stays in memory, as it does for someone browsing while the tag flushes every 5 s) and returning visitors (${RATE * RATE_DURATION_S} people, one batch each after more than 10 s away: workerd has evicted their ProfileDO, which the batch loads again).\n`,
  );
  console.log(
    '| target | workload | requests/s achieved | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [workload, results] of [
    ['active visitors', active],
    ['returning visitors', returning],
  ]) {
    for (const t of targets) {
      const r = results.get(t);
      console.log(
        `| ${name(t)} | ${workload} | ${f(r.rps, 0)} | ${f(r.p50, 0)} | ${f(r.p90, 0)} | ${f(r.p99, 0)} | ${f(r.max, 0)} | ${r.non2xx} | ${r.errors} |`,
      );
    }
  }
  if (nonOkStatuses.size > 0)
    console.log(
      `\nNon-2xx answers by status, whole run: ${[...nonOkStatuses].map(([s, n]) => `${s} × ${n}`).join(', ')}.`,
    );
  console.log(`\nThe Directus stand-in answered ${directus.reads ?? 0} reads (configuration and catalog).`);
  directus.close();
  // The run with wrangler's defaults writes beside the first run's file, not over it.
  if (trace)
    writeFileSync(
      `${process.env.BENCH_TRACE}${DEV_TOOLS === 'on' ? '.defaults' : ''}`,
      `${trace.join('\n')}\n`,
    );
}

/** Without BENCH_DEV_TOOLS: this run (dev tools off), then the same bench with wrangler's defaults. */
async function mainAndDefaults() {
  console.log(
    DEV_TOOLS === 'on'
      ? "#### wrangler dev's defaults (local trace collector and data explorer on)\n"
      : '#### wrangler dev with its local trace collector and data explorer off (X_LOCAL_OBSERVABILITY=false, X_LOCAL_EXPLORER=false)\n',
  );
  await main();
  if (DEV_TOOLS !== undefined) return;
  cleanup();
  console.log('');
  const second = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_DEV_TOOLS: 'on' },
  });
  const code = await new Promise((res) => second.on('exit', res));
  if (code !== 0) throw new Error(`the run with wrangler's defaults failed (exit ${code})`);
}

mainAndDefaults()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
