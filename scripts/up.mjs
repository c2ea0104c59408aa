#!/usr/bin/env node
/**
 * `./attune up`: the whole Attune system on this machine, in one command.
 *   1. secrets: .dev.vars with random values on first run (identity secret, server key,
 *      admin token, hook secret), shared by the Worker, Directus and the shop;
 *   2. Directus on SQLite: installed, bootstrapped and seeded on first run only
 *      (services/directus/scripts/up.mjs), then started;
 *   3. the demo shop (examples/nextjs-shop): `next build` only when its sources changed,
 *      then `next start`;
 *   4. the Worker under `wrangler dev` in edge-proxy mode in front of the shop.
 * Prints the URLs; Ctrl-C stops all of it. Everything listens on 127.0.0.1.
 *
 * `startLocalSystem()` is also what the shop's end-to-end tests start, on their own
 * ports with their own fresh Directus and Worker state.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cronsOf, runCrons } from './cron.mjs';
import { configuredSites } from './wrangler-sites.mjs';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SHOP_DIR = join(REPO_ROOT, 'examples', 'nextjs-shop');
const DIRECTUS_DIR = join(REPO_ROOT, 'services', 'directus');
const WRITE_KEY = 'pk_demo_attune';

/** Default ports of `./attune up`. */
export const DEFAULT_PORTS = { shop: 3000, worker: 8787, directus: 8055 };

/** The variables that move `./attune up` off its default ports. */
const PORT_VARIABLES = {
  shop: 'ATTUNE_SHOP_PORT',
  worker: 'ATTUNE_WORKER_PORT',
  directus: 'ATTUNE_DIRECTUS_PORT',
};

/**
 * `./attune up`'s ports: the defaults, each replaced by its variable when set
 * (ATTUNE_SHOP_PORT, ATTUNE_WORKER_PORT, ATTUNE_DIRECTUS_PORT). Throws, naming the variable,
 * on a value that is not a port.
 */
export function portsFromEnv(env = process.env) {
  const ports = { ...DEFAULT_PORTS };
  for (const [service, name] of Object.entries(PORT_VARIABLES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const port = Number(value);
    if (!/^\d+$/.test(value) || port < 1 || port > 65535)
      throw new Error(`${name}=${value.slice(0, 40)} is not a port: give a whole number from 1 to 65535`);
    ports[service] = port;
  }
  const taken = Object.values(ports);
  if (new Set(taken).size < taken.length)
    throw new Error(
      `the shop, the Worker and Directus need three different ports (given ${taken.join(', ')})`,
    );
  return ports;
}

function log(msg) {
  process.stderr.write(`attune: ${msg}\n`);
}

function secret(bytes = 32) {
  return randomBytes(bytes).toString('base64url');
}

/** Parses KEY=value lines (values may be quoted). */
export function parseDotenv(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

function writeDotenv(path, vars, header) {
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${/[\s"#{]/.test(v) ? `'${v}'` : v}`);
  writeFileSync(path, `${header}\n${lines.join('\n')}\n`, { mode: 0o600 });
}

/**
 * A secret the Worker would not take: unset, or under 16 characters (every placeholder of
 * .dev.vars.example is). The Worker refuses such an ADMIN_TOKEN, HOOK_SECRET, identity
 * secret, server key and privacy token alike.
 */
const tooWeak = (value) => typeof value !== 'string' || value.length < 16;

/**
 * The Worker's local secrets: kept when the Worker would take them, random where missing or
 * too weak (the example's placeholders). Returns the values plus the site's secrets.
 */
export function ensureSecrets(devVarsPath) {
  const vars = existsSync(devVarsPath) ? parseDotenv(readFileSync(devVarsPath, 'utf8')) : {};
  let sites = {};
  try {
    sites = JSON.parse(vars.ATTUNE_SITE_SECRETS ?? '{}');
  } catch {
    sites = {};
  }
  const demo = sites.demo ?? {};
  let changed = !existsSync(devVarsPath);
  // The shop signs user ids with the identity secret and Directus's order Flow sends the
  // server key: both get the new values from here, as the Worker does.
  if (tooWeak(demo.identitySecret)) {
    demo.identitySecret = secret();
    changed = true;
  }
  if (tooWeak(demo.serverKey)) {
    demo.serverKey = `sk_${secret(24)}`;
    changed = true;
  }
  // The shop's token for its people routes (access, erasure), never the Worker's ADMIN_TOKEN.
  // The Worker does not take one under 16 characters: the shop's erasure would get 401.
  if (tooWeak(demo.privacyToken)) {
    demo.privacyToken = secret();
    changed = true;
  }
  sites.demo = demo;
  vars.ATTUNE_SITE_SECRETS = JSON.stringify(sites);
  // The Worker refuses hooks signed with a HOOK_SECRET under 16 characters (and Directus
  // would keep signing with it).
  for (const key of ['ADMIN_TOKEN', 'HOOK_SECRET']) {
    if (tooWeak(vars[key])) {
      vars[key] = secret();
      changed = true;
    }
  }
  vars.DIRECTUS_TOKEN ??= 'change-me';
  if (changed) {
    writeDotenv(
      devVarsPath,
      vars,
      '# Local secrets for `wrangler dev`, written by scripts/up.mjs (never commit).',
    );
    log(`wrote ${devVarsPath} with random secrets`);
  }
  return {
    vars,
    identitySecret: demo.identitySecret,
    serverKey: demo.serverKey,
    privacyToken: demo.privacyToken,
  };
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules' || name === '.next' || name === 'test-results' || name === 'dist') continue;
    newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

/** Builds the shop unless its build is newer than every source it depends on. */
export function buildShopIfStale({ force = false } = {}) {
  const buildId = join(SHOP_DIR, '.next', 'BUILD_ID');
  const sources = ['app', 'components', 'lib', 'public', 'next.config.ts', 'package.json']
    .map((p) => join(SHOP_DIR, p))
    .concat([
      join(REPO_ROOT, 'packages', 'browser-sdk', 'src'),
      join(REPO_ROOT, 'packages', 'shared-schema', 'src'),
    ]);
  const built = existsSync(buildId) ? statSync(buildId).mtimeMs : 0;
  if (!force && built > Math.max(...sources.map(newestMtime))) {
    log('shop build is up to date');
    return;
  }
  log('building the shop (next build)…');
  run('pnpm', ['exec', 'next', 'build'], {
    cwd: SHOP_DIR,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
}

async function waitForHttp(url, { timeoutMs = 90_000, isAlive = () => true, ok = (s) => s < 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'manual' });
      await res.arrayBuffer();
      if (ok(res.status)) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/** A child process in its own process group, so stopping it stops its children too. */
function startProcess(name, cmd, args, { cwd, env, logFile }) {
  const child = spawn(cmd, args, {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', logFile ? 'pipe' : 'inherit', logFile ? 'pipe' : 'inherit'],
  });
  let exited = false;
  child.on('exit', (code, signal) => {
    exited = true;
    if (!stopping.has(child.pid)) log(`${name} exited (${code ?? signal})`);
  });
  if (logFile) {
    mkdirSync(dirname(logFile), { recursive: true });
    const chunks = [];
    const write = (b) => {
      chunks.push(b);
      writeFileSync(logFile, Buffer.concat(chunks));
    };
    child.stdout?.on('data', write);
    child.stderr?.on('data', write);
  }
  return { name, child, alive: () => !exited };
}

const stopping = new Set();

async function stopProcess(proc) {
  const pid = proc.child.pid;
  if (pid === undefined || !proc.alive()) return;
  stopping.add(pid);
  const signal = (sig) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 8000;
  while (proc.alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (proc.alive()) signal('SIGKILL');
}

/** A copy of wrangler.toml for other ports: absolute paths, and the vars that name ports. */
function wranglerConfigFor(dir, { shopPort, workerPort, directusPort, vars = {} }) {
  const toml = readFileSync(join(REPO_ROOT, 'wrangler.toml'), 'utf8');
  // The demo site's settings (its marketer-defined segments) as wrangler.toml configures them.
  const configured = configuredSites(toml);
  const sites = [
    {
      id: 'demo',
      writeKey: WRITE_KEY,
      allowedOrigins: [
        `http://localhost:${workerPort}`,
        `http://127.0.0.1:${workerPort}`,
        `http://localhost:${shopPort}`,
        `http://127.0.0.1:${shopPort}`,
      ],
      settings: configured.find((site) => site.id === 'demo')?.settings ?? {},
    },
  ];
  const out = toml
    // The entry point is relative to the config: make it absolute for a copy that lives elsewhere.
    .replace(/^main = "([^"/][^"]*)"$/m, (_, rel) => `main = "${join(REPO_ROOT, rel)}"`)
    .replace(/^ORIGIN_URL = .*$/m, `ORIGIN_URL = "http://127.0.0.1:${shopPort}"`)
    .replace(/^DIRECTUS_URL = .*$/m, `DIRECTUS_URL = "http://127.0.0.1:${directusPort}"`)
    .replace(/^ATTUNE_SITES = .*$/m, `ATTUNE_SITES = '${JSON.stringify(sites)}'`)
    .replace(/^([A-Z_]+) = "[^"]*"$/gm, (line, key) =>
      key in vars ? `${key} = ${JSON.stringify(String(vars[key]))}` : line,
    );
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'wrangler.toml');
  writeFileSync(path, out);
  return path;
}

/**
 * Starts Directus, the shop and the Worker. Options:
 *  ports      { shop, worker, directus } (default 3000 / 8787 / 8055)
 *  stateDir   where a private wrangler config, .dev.vars and Worker state live; when
 *             absent the repo's wrangler.toml, .dev.vars and .wrangler/state are used
 *  directusHome  a Directus instance folder (default services/directus)
 *  logDir     where server output goes (default: inherit this terminal)
 *  vars       Worker vars to override in the private config (only with stateDir)
 *  build      build the shop when stale, and the SDK script the Worker serves (default true)
 *  crons      fire the Worker's Cron Triggers when due, as Cloudflare does (default false;
 *             `./attune up` turns them on; tests leave them off so no job runs mid-test)
 * Returns { urls, secrets, stop() }.
 */
export async function startLocalSystem(options = {}) {
  const ports = { ...DEFAULT_PORTS, ...(options.ports ?? {}) };
  const stateDir = options.stateDir ? resolve(options.stateDir) : undefined;
  const devVarsPath = stateDir ? join(stateDir, '.dev.vars') : join(REPO_ROOT, '.dev.vars');
  if (stateDir) mkdirSync(stateDir, { recursive: true });
  const urls = {
    shop: `http://127.0.0.1:${ports.shop}`,
    worker: `http://localhost:${ports.worker}`,
    directus: `http://127.0.0.1:${ports.directus}`,
  };
  const logFile = (name) => (options.logDir ? join(options.logDir, `${name}.log`) : undefined);
  const started = [];
  const directusEnv = {
    ...process.env,
    ATTUNE_DIRECTUS_PORT: String(ports.directus),
    ...(options.directusHome ? { ATTUNE_DIRECTUS_HOME: resolve(options.directusHome) } : {}),
  };
  const stopDirectus = () =>
    spawnSync(process.execPath, [join(DIRECTUS_DIR, 'scripts', 'stop.mjs')], {
      env: directusEnv,
      stdio: 'ignore',
    });
  let stopCrons = () => {};
  const stop = async () => {
    stopCrons();
    for (const p of [...started].reverse()) await stopProcess(p);
    stopDirectus();
  };

  try {
    // 1. Secrets (the Worker's .dev.vars); Directus's Flows sign hooks with HOOK_SECRET.
    const secrets = ensureSecrets(devVarsPath);

    // 2. Directus: install/bootstrap/seed once, then just start.
    log(`starting Directus on ${urls.directus} (first run installs, bootstraps and seeds it: minutes)…`);
    run(process.execPath, [join(DIRECTUS_DIR, 'scripts', 'up.mjs')], {
      cwd: DIRECTUS_DIR,
      env: {
        ...directusEnv,
        ATTUNE_WORKER_URL: `http://127.0.0.1:${ports.worker}`,
        ATTUNE_HOOK_SECRET: secrets.vars.HOOK_SECRET,
        ATTUNE_SERVER_KEY: secrets.serverKey,
        ATTUNE_WRITE_KEY: WRITE_KEY,
      },
    });
    const directusHome = options.directusHome ? resolve(options.directusHome) : DIRECTUS_DIR;
    const workerVarsFile = join(directusHome, 'data', 'worker.dev.vars');
    const fromDirectus = existsSync(workerVarsFile) ? parseDotenv(readFileSync(workerVarsFile, 'utf8')) : {};
    const directusToken = fromDirectus.DIRECTUS_TOKEN ?? '';
    if (directusToken !== '' && secrets.vars.DIRECTUS_TOKEN !== directusToken) {
      secrets.vars.DIRECTUS_TOKEN = directusToken;
      writeDotenv(
        devVarsPath,
        secrets.vars,
        '# Local secrets for `wrangler dev`, written by scripts/up.mjs (never commit).',
      );
    }
    const directusEnvFile = parseDotenv(readFileSync(join(directusHome, '.env'), 'utf8'));
    // The shop reads the catalog with its own read-only token (bootstrap's attune-shop
    // user), never the Worker's attune-sync token, which reaches every visitor's rows.
    const shopVarsFile = join(directusHome, 'data', 'shop.env');
    const shopDirectusToken = existsSync(shopVarsFile)
      ? (parseDotenv(readFileSync(shopVarsFile, 'utf8')).DIRECTUS_TOKEN ?? '')
      : '';
    if (shopDirectusToken === '') throw new Error(`Directus bootstrap wrote no shop token (${shopVarsFile})`);

    // 3. The shop.
    if (options.build !== false) buildShopIfStale();
    const shopEnv = {
      ...process.env,
      NODE_ENV: 'production',
      NEXT_TELEMETRY_DISABLED: '1',
      DIRECTUS_URL: urls.directus,
      DIRECTUS_TOKEN: shopDirectusToken,
      ATTUNE_WORKER_URL: `http://127.0.0.1:${ports.worker}`,
      ATTUNE_IDENTITY_SECRET: secrets.identitySecret,
      ATTUNE_PRIVACY_TOKEN: secrets.privacyToken,
      ATTUNE_WRITE_KEY: WRITE_KEY,
    };
    const shop = startProcess(
      'shop',
      'pnpm',
      ['exec', 'next', 'start', '--hostname', '127.0.0.1', '--port', String(ports.shop)],
      { cwd: SHOP_DIR, env: shopEnv, logFile: logFile('shop') },
    );
    started.push(shop);

    // 4. The Worker in front of the shop. Its bundle imports the SDK script it serves at
    // /attune/attune.js: built here (seconds), so the script tag works against the local
    // system; `build: false` only makes sure the module exists (`pnpm install`'s empty
    // placeholder, which answers with how to build it).
    const copySdk = join(REPO_ROOT, 'packages', 'edge-worker', 'scripts', 'copy-sdk.mjs');
    if (options.build !== false) {
      log('building the SDK script for /attune/attune.js…');
      run('pnpm', ['--filter', '@attune/browser-sdk', 'build'], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      run(process.execPath, [copySdk], { stdio: ['ignore', 'ignore', 'inherit'] });
    } else {
      run(process.execPath, [copySdk, '--placeholder']);
    }
    const config = stateDir
      ? wranglerConfigFor(stateDir, {
          shopPort: ports.shop,
          workerPort: ports.worker,
          directusPort: ports.directus,
          vars: options.vars ?? {},
        })
      : join(REPO_ROOT, 'wrangler.toml');
    const wranglerArgs = [
      'exec',
      'wrangler',
      'dev',
      '-c',
      config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(ports.worker),
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
    ];
    if (stateDir) {
      wranglerArgs.push('--persist-to', join(stateDir, 'wrangler-state'), '--env-file', devVarsPath);
    }
    if (options.inspectorPort) wranglerArgs.push('--inspector-port', String(options.inspectorPort));
    const worker = startProcess('worker', 'pnpm', wranglerArgs, {
      cwd: join(REPO_ROOT, 'packages', 'edge-worker'),
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
      logFile: logFile('worker'),
    });
    started.push(worker);

    if (!(await waitForHttp(`${urls.shop}/`, { isAlive: shop.alive })))
      throw new Error(`the shop did not start on ${urls.shop}`);
    const configUrl = `${urls.worker}/attune/v1/config?writeKey=${WRITE_KEY}`;
    if (!(await waitForHttp(configUrl, { isAlive: worker.alive, timeoutMs: 120_000, ok: (s) => s < 500 }))) {
      throw new Error(`the Worker did not start on ${urls.worker}`);
    }
    if (options.crons) {
      const crons = cronsOf(readFileSync(config, 'utf8'));
      stopCrons = runCrons(urls.worker, crons, log);
      log(`the Worker's crons (${crons.join(', ')}) run when due, in UTC`);
    }
    return {
      urls,
      ports,
      devVarsPath,
      directusHome,
      secrets: {
        identitySecret: secrets.identitySecret,
        adminToken: secrets.vars.ADMIN_TOKEN,
        privacyToken: secrets.privacyToken,
        serverKey: secrets.serverKey,
        directusToken,
        // What the shop was given, so the shop's tests check the token it really reads with.
        shopDirectusToken: shopEnv.DIRECTUS_TOKEN,
        directusAdminEmail: directusEnvFile.ADMIN_EMAIL,
        directusAdminPassword: directusEnvFile.ADMIN_PASSWORD,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main() {
  const ports = portsFromEnv();
  const moved = Object.entries(DEFAULT_PORTS).some(([service, port]) => ports[service] !== port);
  // wrangler.toml names the default ports (the site's allowed origins, the shop, Directus):
  // on others, the Worker runs from a copy that names these, with its own state and secrets
  // (started from the repository's .dev.vars, so Directus's Flows keep signing alike).
  const stateDir = moved
    ? join(REPO_ROOT, '.wrangler', `up-${ports.shop}-${ports.worker}-${ports.directus}`)
    : undefined;
  if (
    stateDir !== undefined &&
    !existsSync(join(stateDir, '.dev.vars')) &&
    existsSync(join(REPO_ROOT, '.dev.vars'))
  ) {
    mkdirSync(stateDir, { recursive: true });
    copyFileSync(join(REPO_ROOT, '.dev.vars'), join(stateDir, '.dev.vars'));
  }
  const system = await startLocalSystem({
    crons: true,
    ports,
    ...(stateDir !== undefined ? { stateDir } : {}),
  });
  const { urls, secrets } = system;
  process.stdout.write(
    [
      '',
      'Attune is running:',
      `  Shop (through the Worker, personalized): ${urls.worker}`,
      `  Shop (straight from Next.js):            ${urls.shop}`,
      `  Directus admin:                          ${urls.directus}/admin`,
      `      sign in as ${secrets.directusAdminEmail} / ${secrets.directusAdminPassword}`,
      `  Attune API (first-party):                ${urls.worker}/attune/v1/config?writeKey=${WRITE_KEY}`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    void system.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
