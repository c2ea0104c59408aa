// Copies the browser SDK's script-tag build into the Worker's static assets, so edge-proxy
// mode serves it first-party at /attune/attune.js. Run by `pnpm build` after the SDK builds
// (this package depends on @attune/browser-sdk, so pnpm orders the builds).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '../../browser-sdk/dist/attune.js');
const target = resolve(here, '../public/attune/attune.js');
if (!existsSync(source)) {
  console.error(`edge-worker build: ${source} is missing — build @attune/browser-sdk first (pnpm build).`);
  process.exit(1);
}
mkdirSync(dirname(target), { recursive: true });
copyFileSync(source, target);
console.log(`edge-worker build: copied the SDK to ${target}`);
