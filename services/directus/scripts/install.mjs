#!/usr/bin/env node
/**
 * Installs the pinned Directus (12.4.0) into services/directus/node_modules, once.
 * Idempotent: when Directus is installed and sqlite3's native binding loads under this
 * Node, it does nothing. Run through scripts/toolchain.sh so sqlite3 builds against
 * Node 22's headers (npm_config_nodedir).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIRECTUS_VERSION, directusInstalled, log, nativesLoad, PROJECT_DIR } from './lib.mjs';

// Run under an older Node, npm would rebuild the native addons for it, and Directus would no
// longer start under the Node the project uses.
if (Number(process.versions.node.split('.')[0]) < 22) {
  log(
    `Node ${process.versions.node} is too old for Directus 12: source scripts/toolchain.sh (Node >= 22) first`,
  );
  process.exit(1);
}

if (directusInstalled()) {
  log(`directus@${DIRECTUS_VERSION} already installed`);
  process.exit(0);
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const rebuildNatives = () =>
  spawnSync(npm, ['rebuild', 'sqlite3', 'isolated-vm', '--foreground-scripts', '--build-from-source'], {
    cwd: PROJECT_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
  }).status === 0 && nativesLoad();

const installed = join(PROJECT_DIR, 'node_modules', 'directus', 'package.json');
if (existsSync(installed) && JSON.parse(readFileSync(installed, 'utf8')).version === DIRECTUS_VERSION) {
  // Installed, but its native addons were built for another Node: rebuilding them is enough.
  log('native addons do not load under this Node; rebuilding them');
  if (rebuildNatives()) {
    log(`directus@${DIRECTUS_VERSION} installed`);
    process.exit(0);
  }
}
const lock = existsSync(join(PROJECT_DIR, 'package-lock.json'));
log(`installing directus@${DIRECTUS_VERSION} (${lock ? 'npm ci' : 'npm install'}; takes a few minutes)…`);
// --foreground-scripts: sqlite3 must run its install script (it builds from source here).
const args = [lock ? 'ci' : 'install', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel=warn'];
const r = spawnSync(npm, args, { cwd: PROJECT_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  log('npm install failed');
  process.exit(r.status ?? 1);
}
if (!nativesLoad()) {
  log('a native addon did not load; rebuilding sqlite3 and isolated-vm from source against this Node');
  if (!rebuildNatives()) {
    log('they still do not load: check that a C++ toolchain (make, g++, python3) is installed');
    process.exit(1);
  }
}
log(`directus@${DIRECTUS_VERSION} installed`);
