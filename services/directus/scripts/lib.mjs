/**
 * Shared plumbing for the local Directus scripts (install, bootstrap, seed, start, stop):
 * where an instance lives, how it is configured, and how to talk to it.
 *
 * An instance is a folder (default: services/directus) holding `.env`, `data/` (SQLite,
 * pid, log, the sync token file) and `uploads/`. Tests point ATTUNE_DIRECTUS_HOME at a
 * fresh folder and ATTUNE_DIRECTUS_PORT at their own port, so they never touch the
 * developer's instance.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** services/directus: the npm project that holds the pinned Directus install. */
export const PROJECT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(PROJECT_DIR, '..', '..');
export const DIRECTUS_VERSION = '12.4.0';
// The API's own CLI entry: directus/cli.js would first query the registry for updates.
export const DIRECTUS_BIN = join(PROJECT_DIR, 'node_modules', '@directus', 'api', 'dist', 'cli', 'run.js');

/** The instance the current process works on, from the environment. */
export function instance() {
  const home = resolve(process.env.ATTUNE_DIRECTUS_HOME ?? PROJECT_DIR);
  const dataDir = join(home, 'data');
  const port = Number(process.env.ATTUNE_DIRECTUS_PORT ?? readEnvFile(join(home, '.env')).PORT ?? 8055);
  return {
    home,
    dataDir,
    envFile: join(home, '.env'),
    pidFile: join(dataDir, 'directus.pid'),
    logFile: join(dataDir, 'directus.log'),
    /** DIRECTUS_URL / DIRECTUS_TOKEN / HOOK_SECRET lines for the Worker's .dev.vars. */
    workerVarsFile: join(dataDir, 'worker.dev.vars'),
    seededMarker: join(dataDir, 'seeded'),
    port,
    url: `http://127.0.0.1:${port}`,
  };
}

export function ensureDir(dir) {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Parses a dotenv-style file (KEY=value lines; no interpolation); {} when absent. */
export function readEnvFile(path) {
  if (!existsSync(path)) return {};
  const out = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

export function randomSecret(bytes = 32) {
  return randomBytes(bytes).toString('base64url');
}

/** Whether the pinned Directus is installed and sqlite3's native binding loads under this Node. */
export function directusInstalled() {
  const pkg = join(PROJECT_DIR, 'node_modules', 'directus', 'package.json');
  if (!existsSync(pkg)) return false;
  if (JSON.parse(readFileSync(pkg, 'utf8')).version !== DIRECTUS_VERSION) return false;
  return nativesLoad();
}

/**
 * Whether the native addons Directus loads (sqlite3, and isolated-vm for Flow scripts) load
 * under this Node: each is built for one Node ABI, and an install run under another Node
 * rebuilds them for that one.
 */
export function nativesLoad() {
  const r = spawnSync(process.execPath, ['-e', "require('sqlite3'); require('isolated-vm')"], {
    cwd: PROJECT_DIR,
    stdio: 'ignore',
  });
  return r.status === 0;
}

export const require = createRequire(join(PROJECT_DIR, 'package.json'));

/** The environment a Directus process runs with (its .env is read via CONFIG_PATH). */
export function directusProcessEnv(inst) {
  return { ...process.env, CONFIG_PATH: inst.envFile, NODE_ENV: 'production' };
}

export function log(msg) {
  process.stderr.write(`directus: ${msg}\n`);
}

/**
 * Waits until Directus answers (or the deadline passes). GET /server/ping, because
 * Directus 12 answers /server/health with 403 to anonymous callers.
 */
export async function waitForHealth(url, { timeoutMs = 120_000, isAlive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) return false;
    try {
      const res = await fetch(`${url}/server/ping`);
      if (res.ok && (await res.text()) === 'pong') return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Whether a process id is alive. */
export function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Logs in with the admin account and returns an access token. */
export async function adminToken(inst) {
  const env = readEnvFile(inst.envFile);
  const res = await fetch(`${inst.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }),
  });
  if (!res.ok) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
  const body = await res.json();
  return body.data.access_token;
}

/** A small admin REST client for the scripts (throws with Directus's own message). */
export function adminClient(inst, token) {
  async function call(method, path, body) {
    const res = await fetch(`${inst.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const err = new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
      err.status = res.status;
      throw err;
    }
    return json?.data;
  }
  return {
    get: (p) => call('GET', p),
    post: (p, b) => call('POST', p, b),
    patch: (p, b) => call('PATCH', p, b),
    del: (p, b) => call('DELETE', p, b),
    /** GET that answers undefined on 403/404 (Directus says 403 for a missing collection). */
    async find(p) {
      try {
        return await call('GET', p);
      } catch (e) {
        if (e.status === 403 || e.status === 404) return undefined;
        throw e;
      }
    },
  };
}
