// Builds the script-tag tracker (dist/attune.js: IIFE, ES2020, minified, no global but
// window.attune) and an ESM bundle for bundler-less module use (dist/attune.mjs).
import { build } from 'esbuild';

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
};

await build({ ...common, entryPoints: ['src/script.ts'], format: 'iife', outfile: 'dist/attune.js' });
await build({ ...common, entryPoints: ['src/index.ts'], format: 'esm', outfile: 'dist/attune.mjs' });
