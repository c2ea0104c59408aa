#!/usr/bin/env node
/**
 * Installs the pinned Directus (12.4.0) into services/directus/node_modules, once.
 * Idempotent: when Directus is installed and sqlite3's native binding loads under this
 * Node, it does nothing. Run through scripts/toolchain.sh so sqlite3 builds against
 * Node 22's headers (npm_config_nodedir).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DIRECTUS_VERSION, directusInstalled, log, PROJECT_DIR, sqliteLoads } from './lib.mjs';

if (directusInstalled()) {
  log(`directus@${DIRECTUS_VERSION} already installed`);
  process.exit(0);
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const lock = existsSync(join(PROJECT_DIR, 'package-lock.json'));
log(`installing directus@${DIRECTUS_VERSION} (${lock ? 'npm ci' : 'npm install'}; takes a few minutes)…`);
// --foreground-scripts: sqlite3 must run its install script (it builds from source here).
const args = [lock ? 'ci' : 'install', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel=warn'];
const r = spawnSync(npm, args, { cwd: PROJECT_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  log('npm install failed');
  process.exit(r.status ?? 1);
}
if (!sqliteLoads()) {
  log('sqlite3 native binding did not load; rebuilding it from source against this Node');
  const rb = spawnSync(npm, ['rebuild', 'sqlite3', '--foreground-scripts', '--build-from-source'], {
    cwd: PROJECT_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (rb.status !== 0 || !sqliteLoads()) {
    log('sqlite3 still does not load: check that a C++ toolchain (make, g++, python3) is installed');
    process.exit(1);
  }
}
log(`directus@${DIRECTUS_VERSION} installed`);
