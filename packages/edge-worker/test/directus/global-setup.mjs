/**
 * Vitest globalSetup (Node) for the Directus integration tests: installs Directus if
 * needed, bootstraps a fresh instance on 127.0.0.1:18055 in a temporary folder, runs the
 * Worker under `wrangler dev` on 127.0.0.1:18057 (so Directus Flows can reach it), and a
 * tiny control server on 127.0.0.1:18056 that lets tests inside workerd stop and restart
 * Directus (for the outage test), bootstrap it again as an upgrade does, read what
 * wrangler dev printed, and refuse the Flows' calls to the Worker as a Worker that is down
 * or being deployed does (Directus reaches the Worker through it). Everything is stopped
 * and removed afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIRECTUS_TEST } from './constants.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../../../..');
const scripts = join(repo, 'services/directus/scripts');
const pkgDir = resolve(here, '../..');
/** The control server's path prefix passing the Flows' calls on to the Worker. */
const FLOW_PREFIX = new URL(DIRECTUS_TEST.flowWorkerUrl).pathname;

function log(msg) {
  process.stderr.write(`[directus-tests] ${msg}\n`);
}

async function waitFor(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Refuses to start when a port of the run is taken: a Directus or Worker left by a run that
 * was killed keeps answering there, and every test would then run against its old state
 * (and the outage test could not stop it) instead of failing at once.
 */
async function ensurePortsFree(ports) {
  for (const port of ports) {
    const taken = await new Promise((resolvePort) => {
      const probe = createServer();
      probe.once('error', () => resolvePort(true));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolvePort(false)));
    });
    if (taken)
      throw new Error(
        `127.0.0.1:${port} is already in use, by a Directus or Worker a killed test run left behind? ` +
          `Stop it (\`ss -ltnp | grep ${port}\` names the process) and run the tests again.`,
      );
  }
}

export default async function setup() {
  await ensurePortsFree([
    DIRECTUS_TEST.port,
    DIRECTUS_TEST.controlPort,
    DIRECTUS_TEST.workerPort,
    DIRECTUS_TEST.inspectorPort,
  ]);
  const home = mkdtempSync(join(tmpdir(), 'attune-directus-test-'));
  const env = {
    ...process.env,
    ATTUNE_DIRECTUS_HOME: home,
    ATTUNE_DIRECTUS_PORT: String(DIRECTUS_TEST.port),
    ATTUNE_SYNC_TOKEN: DIRECTUS_TEST.syncToken,
    ATTUNE_HOOK_SECRET: DIRECTUS_TEST.hookSecret,
    // Through the control server, which passes the Flows' calls on to the Worker, or refuses them.
    ATTUNE_WORKER_URL: DIRECTUS_TEST.flowWorkerUrl,
    ATTUNE_ADMIN_EMAIL: DIRECTUS_TEST.adminEmail,
    ATTUNE_ADMIN_PASSWORD: DIRECTUS_TEST.adminPassword,
    ATTUNE_SERVER_KEY: DIRECTUS_TEST.serverKey,
  };
  const run = (script, args = []) => {
    const r = spawnSync(process.execPath, [join(scripts, script), ...args], { env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status})`);
  };
  log(`installing (if needed) and bootstrapping Directus in ${home}`);
  run('install.mjs');
  run('bootstrap.mjs');

  // The Worker, reachable from Directus Flows.
  const persist = join(home, 'wrangler-state');
  const workerEnvFile = join(home, 'worker.env');
  writeFileSync(
    workerEnvFile,
    [
      `DIRECTUS_URL=${DIRECTUS_TEST.url}`,
      `DIRECTUS_TOKEN=${DIRECTUS_TEST.syncToken}`,
      `HOOK_SECRET=${DIRECTUS_TEST.hookSecret}`,
      `ADMIN_TOKEN=${DIRECTUS_TEST.adminToken}`,
      `ATTUNE_SITE_SECRETS=${JSON.stringify({ demo: { identitySecret: 'test-identity-secret', serverKey: DIRECTUS_TEST.serverKey } })}`,
    ].join('\n'),
  );
  const wranglerBin = join(pkgDir, 'node_modules/wrangler/bin/wrangler.js');
  const worker = spawn(
    process.execPath,
    [
      wranglerBin,
      'dev',
      '-c',
      join(repo, 'wrangler.toml'),
      '--ip',
      '127.0.0.1',
      '--port',
      String(DIRECTUS_TEST.workerPort),
      '--inspector-port',
      String(DIRECTUS_TEST.inspectorPort),
      '--env-file',
      workerEnvFile,
      '--persist-to',
      persist,
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
      // GET /__scheduled?cron=… runs the scheduled handler (the order catch-up's test).
      '--test-scheduled',
    ],
    {
      cwd: pkgDir,
      // Without wrangler's local trace collector and data explorer, as deployed (the
      // collector attaches a streaming tail to every request).
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        X_LOCAL_OBSERVABILITY: 'false',
        X_LOCAL_EXPLORER: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  // Shown as before, and kept (the last 1 MB) for tests that check what the runtime
  // reported while they ran: GET /worker/output on the control server.
  let workerOutput = '';
  const keep = (out) => (chunk) => {
    out.write(chunk);
    workerOutput = (workerOutput + chunk).slice(-1_000_000);
  };
  worker.stdout.on('data', keep(process.stdout));
  worker.stderr.on('data', keep(process.stderr));
  if (!(await waitFor(`${DIRECTUS_TEST.workerUrl}/healthz`, 90_000))) {
    process.kill(-worker.pid, 'SIGTERM');
    throw new Error('wrangler dev did not start');
  }
  log(`worker under wrangler dev at ${DIRECTUS_TEST.workerUrl}`);

  // What the Flows' calls to the Worker are answered while refused (POST /flows/refuse), and
  // the paths of those refused so far.
  let refusing;
  const refused = [];

  // Control: lets workerd tests stop and restart Directus.
  const control = createServer((req, res) => {
    const done = (code, text) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(text);
    };
    if (req.method === 'GET' && req.url === '/worker/output') return done(200, workerOutput);
    if (req.url?.startsWith(FLOW_PREFIX)) {
      const path = req.url.slice(FLOW_PREFIX.length);
      if (refusing !== undefined) {
        refused.push(path);
        req.resume();
        return done(refusing, 'refused by the test (the Worker down or being deployed)');
      }
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const headers = { ...req.headers };
        delete headers.host;
        delete headers['content-length'];
        fetch(`${DIRECTUS_TEST.workerUrl}${path}`, {
          method: req.method,
          headers,
          ...(chunks.length > 0 && { body: Buffer.concat(chunks) }),
        })
          .then(async (answer) => {
            const body = Buffer.from(await answer.arrayBuffer());
            res.writeHead(answer.status, {
              'content-type': answer.headers.get('content-type') ?? 'text/plain',
            });
            res.end(body);
          })
          .catch((e) => done(502, String(e)));
      });
      return;
    }
    if (req.method === 'POST' && req.url?.startsWith('/flows/refuse')) {
      refusing = Number(new URL(req.url, 'http://control').searchParams.get('status') ?? 503);
      refused.length = 0;
      return done(200, `refusing with ${refusing}`);
    }
    if (req.method === 'POST' && req.url === '/flows/pass') {
      refusing = undefined;
      return done(200, 'passing on');
    }
    if (req.method === 'GET' && req.url === '/flows/refused') return done(200, JSON.stringify(refused));
    const action = {
      '/directus/stop': 'stop.mjs',
      '/directus/start': 'start.mjs',
      '/directus/upgrade': 'bootstrap.mjs',
    }[req.url ?? ''];
    if (req.method !== 'POST' || action === undefined)
      return done(
        404,
        'POST /directus/stop | /directus/start | /directus/upgrade | /flows/refuse?status= | /flows/pass, GET /worker/output | /flows/refused',
      );
    // An upgrade is a bootstrap of the running instance as a newer release makes it: its
    // marker of what was applied no longer matches, so the schema is applied again.
    if (req.url === '/directus/upgrade') rmSync(join(home, 'data', 'bootstrapped'), { force: true });
    const child = spawn(process.execPath, [join(scripts, action)], { env, stdio: 'inherit' });
    child.on('exit', (code) => done(code === 0 ? 200 : 500, `${action} exit ${code}`));
  });
  await new Promise((r) => control.listen(DIRECTUS_TEST.controlPort, '127.0.0.1', r));

  return async () => {
    await new Promise((r) => control.close(r));
    try {
      process.kill(-worker.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    run('stop.mjs');
    rmSync(home, { recursive: true, force: true });
  };
}
