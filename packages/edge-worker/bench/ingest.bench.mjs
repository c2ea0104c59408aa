// Ingest benchmark: the real Worker (POST /v1/collect, 20-event batches from many
// simulated people) and a trivial Hono Worker answering 204, both under `wrangler dev`
// (local workerd) in the same run, loaded over loopback with autocannon.
// Reports requests/s, accepted events/s, p50/p99 latency, the ratio to the baseline, and
// the CPU time per batch (from /proc: utime+stime of the workerd processes, and of the whole wrangler process tree, delta
// over the run, divided by the requests it answered).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const WORKER_PORT = 18780;
const TRIVIAL_PORT = 18781;
const INSPECTOR_PORTS = [18782, 18783];
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PEOPLE = Number(process.env.BENCH_PEOPLE ?? 500);
const BATCH = 20;
const ORIGIN = 'http://127.0.0.1:3000';
const WRITE_KEY = 'pk_bench_attune';
const ADMIN_TOKEN = `bench-${randomBytes(8).toString('hex')}`;

// Durable Object storage goes to a temp dir in memory where there is one (/dev/shm): the
// bench measures the Worker, not this machine's disk.
const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'attune-bench-ingest-'));
const children = [];

function cleanup() {
  for (const child of children) {
    try {
      // Each server runs in its own process group (detached); end exactly that group.
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** The Worker's config for the bench: the real bindings, minus the queue consumer and cron (not what we measure). */
function benchConfig() {
  let toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  toml = toml.replace(/\[\[queues\.consumers\]\][\s\S]*?\n\n/, '\n');
  toml = toml.replace(/\[triggers\][\s\S]*?\n\n/, '\n');
  // The config moves to a temp dir: make its repository-relative paths absolute.
  toml = toml.replace(
    /^(main|directory) = "([^"]+)"$/gm,
    (_m, key, path) => `${key} = ${JSON.stringify(join(root, path))}`,
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
  const dir = join(work, 'worker');
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(join(work, 'wrangler.toml'), toml);
  writeFileSync(
    join(work, '.dev.vars'),
    [
      `ATTUNE_SITE_SECRETS=${JSON.stringify({ bench: { identitySecret: 'bench-identity', serverKey: 'sk_bench' } })}`,
      `ADMIN_TOKEN=${ADMIN_TOKEN}`,
      'HOOK_SECRET=bench',
      'DIRECTUS_TOKEN=bench',
    ].join('\n'),
  );
  return join(work, 'wrangler.toml');
}

function startWrangler(config, port, inspectorPort, label) {
  const bin = join(here, '..', 'node_modules', '.bin', 'wrangler');
  const child = spawn(
    bin,
    [
      'dev',
      '--config',
      config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspectorPort),
      '--persist-to',
      join(work, `state-${label}`),
      '--log-level',
      process.env.BENCH_LOG_LEVEL ?? 'warn',
      '--show-interactive-dev-session=false',
    ],
    {
      cwd: dirname(config),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
    },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output = (output + d).slice(-4000);
    if (process.env.BENCH_LOG_LEVEL) process.stderr.write(d);
  });
  child.stderr.on('data', (d) => {
    output = (output + d).slice(-4000);
  });
  children.push(child);
  return { child, output: () => output };
}

async function waitReady(url, server) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {}
    if (server.child.exitCode !== null) throw new Error(`wrangler exited:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`not ready: ${url}\n${server.output()}`);
}

/** The wrangler process and all its descendants (node proxy, esbuild, workerd). */
function processTree(pid) {
  const parentOf = new Map();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parentOf.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  const tree = [pid];
  for (const [child] of parentOf) {
    let cur = child;
    for (let hops = 0; hops < 10 && cur > 1; hops++) {
      cur = parentOf.get(cur) ?? 0;
      if (cur === pid) {
        tree.push(child);
        break;
      }
    }
  }
  return tree;
}

/** The workerd processes under a wrangler process (wrangler dev runs two: the Worker's and its dev proxy). */
function findWorkerd(pid) {
  return processTree(pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'workerd';
    } catch {
      return false;
    }
  });
}

/** CPU time (ms) a process has used so far: utime + stime from /proc. */
function cpuMs(pid) {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

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

/** One 20-event batch from one of PEOPLE simulated people: page and product views, cart adds. */
function batchBody() {
  const person = `bench-person-${seq++ % PEOPLE}`;
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

async function load(url, pid, treePid, label, inspectorPort) {
  const run = (duration) =>
    new Promise((res, rej) => {
      autocannon(
        {
          url,
          connections: CONNECTIONS,
          duration,
          headers: { origin: ORIGIN, 'content-type': 'text/plain;charset=UTF-8' },
          requests: [
            {
              method: 'POST',
              setupRequest: (req) => ({ ...req, body: batchBody() }),
            },
          ],
        },
        (err, result) => (err ? rej(err) : res(result)),
      );
    });
  await run(2); // warm-up: compile, first Durable Objects, JIT
  const tree = processTree(treePid);
  const treeCpu = () => tree.reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
  const workerdCpu = () => pid.reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
  const profiler = process.env.BENCH_PROFILE ? await startProfiler(inspectorPort) : undefined;
  const before = workerdCpu();
  const beforeTree = treeCpu();
  const result = await run(DURATION_S);
  if (profiler) {
    const profile = await profiler.stop();
    const file = `${process.env.BENCH_PROFILE}-${label.replace(/\W+/g, '_')}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.error(`\nCPU profile of ${label} (${file}):\n${summarizeProfile(profile)}\n`);
  }
  const cpu = workerdCpu() - before;
  const cpuTree = treeCpu() - beforeTree;
  const answered = result.requests.total;
  return {
    label,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    answered,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    cpuPerRequestMs: cpu / Math.max(1, answered),
    treeCpuPerRequestMs: cpuTree / Math.max(1, answered),
  };
}

async function stats() {
  const res = await fetch(`http://127.0.0.1:${WORKER_PORT}/v1/admin/stats`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (await res.json()).counters;
}

async function main() {
  const worker = startWrangler(benchConfig(), WORKER_PORT, INSPECTOR_PORTS[0], 'worker');
  const trivial = startWrangler(
    join(here, 'trivial', 'wrangler.toml'),
    TRIVIAL_PORT,
    INSPECTOR_PORTS[1],
    'trivial',
  );
  await Promise.all([
    waitReady(`http://127.0.0.1:${WORKER_PORT}/healthz`, worker),
    waitReady(`http://127.0.0.1:${TRIVIAL_PORT}/`, trivial),
  ]);
  const workerPid = findWorkerd(worker.child.pid);
  const trivialPid = findWorkerd(trivial.child.pid);
  if (process.env.BENCH_DEBUG) console.error('workerd', workerPid, trivialPid, processTree(worker.child.pid));

  // A sanity request: the bench must measure accepted events, not errors.
  const probe = await fetch(`http://127.0.0.1:${WORKER_PORT}/v1/collect`, {
    method: 'POST',
    headers: { origin: ORIGIN },
    body: batchBody(),
  });
  const probeBody = await probe.json();
  if (probe.status !== 200 || probeBody.accepted !== BATCH)
    throw new Error(`probe failed: ${probe.status} ${JSON.stringify(probeBody)}`);

  if (process.env.BENCH_HOLD) {
    console.log('holding for probes on', WORKER_PORT);
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD) * 1000));
  }
  const base = await load(
    `http://127.0.0.1:${TRIVIAL_PORT}/v1/collect`,
    trivialPid,
    trivial.child.pid,
    'trivial Hono Worker (204)',
    INSPECTOR_PORTS[1],
  );
  const before = await stats();
  const ingest = await load(
    `http://127.0.0.1:${WORKER_PORT}/v1/collect`,
    workerPid,
    worker.child.pid,
    'Attune /v1/collect',
    INSPECTOR_PORTS[0],
  );
  const after = await stats();
  const acceptedEvents = after.accepted - before.accepted;
  // Accepted during warm-up + measured run; rate over the measured run is approximated from the share of answered requests.
  const acceptedPerSecond =
    (ingest.rps * BATCH * acceptedEvents) / Math.max(1, (ingest.answered + ingest.rps * 2) * BATCH);

  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  console.log(
    `Load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s after a 2 s warm-up, ${BATCH}-event batches from ${PEOPLE} simulated people, loopback, wrangler dev (local workerd) on a shared 2-core machine.\n`,
  );
  console.log(
    '| target | requests/s | events/s | p50 ms | p99 ms | non-2xx | errors | workerd CPU ms / request (both processes) | wrangler tree CPU ms / request |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of [base, ingest]) {
    const events = r === ingest ? f(acceptedPerSecond, 0) : '—';
    console.log(
      `| ${r.label} | ${f(r.rps, 0)} | ${events} | ${f(r.p50, 0)} | ${f(r.p99, 0)} | ${r.non2xx} | ${r.errors} | ${f(r.cpuPerRequestMs, 2)} | ${f(r.treeCpuPerRequestMs, 2)} |`,
    );
  }
  console.log('');
  console.log('| ratio | value |');
  console.log('|---|---:|');
  console.log(`| ingest requests/s ÷ trivial requests/s | ${f(ingest.rps / base.rps, 2)} |`);
  console.log(`| ingest p99 ÷ trivial p99 | ${f(ingest.p99 / Math.max(1, base.p99), 2)} |`);
  console.log(
    `| workerd CPU per 20-event batch, ingest − trivial (ms) | ${f(ingest.cpuPerRequestMs - base.cpuPerRequestMs, 2)} |`,
  );
  console.log(
    `| wrangler tree CPU per 20-event batch, ingest − trivial (ms) | ${f(ingest.treeCpuPerRequestMs - base.treeCpuPerRequestMs, 2)} |`,
  );
  console.log(`\naccepted events counted by /v1/admin/stats during warm-up + run: ${acceptedEvents}`);
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
