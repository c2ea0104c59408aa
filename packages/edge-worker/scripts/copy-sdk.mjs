// Copies the browser SDK's script-tag build into the Worker's bundle (src/proxy/sdk-script.txt,
// a Text module), so edge-proxy mode serves it first-party at /attune/attune.js. Run by
// `pnpm build` after the SDK builds (this package depends on @attune/browser-sdk, so pnpm
// orders the builds). With `--placeholder` (this package's postinstall) it only makes sure
// the module exists: an empty one, until `pnpm build`, makes the Worker answer the script's
// URL with how to build it — the Worker and its tests still run before the SDK is built.
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '../../browser-sdk/dist/attune.js');
const target = resolve(here, '../src/proxy/sdk-script.txt');
if (process.argv.includes('--placeholder')) {
  if (!existsSync(target)) writeFileSync(target, '');
} else if (!existsSync(source)) {
  console.error(`edge-worker build: ${source} is missing — build @attune/browser-sdk first (pnpm build).`);
  process.exit(1);
} else {
  copyFileSync(source, target);
  console.log(`edge-worker build: copied the SDK to ${target}`);
}
