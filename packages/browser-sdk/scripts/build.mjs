// Builds the script-tag tracker, dist/attune.js (IIFE, ES2020, no global but
// window.attune): esbuild bundles and strips types, terser then minifies harder than
// esbuild can (constant objects such as LIMITS are inlined and their unused fields
// dropped), because every byte of the tag counts against its size budget.
// Also dist/attune.mjs, an ESM bundle for module use without a bundler.
import { readFile, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { minify } from 'terser';

const common = {
  bundle: true,
  target: 'es2020',
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
};

const terserOptions = (toplevel) => ({
  ecma: 2020,
  toplevel,
  // Inline only simple functions: copying bigger bodies (and their strings) into callers costs bytes.
  compress: { passes: 3, unsafe: true, unsafe_arrows: true, pure_getters: true, inline: 1 },
  mangle: true,
  format: { comments: false },
});

for (const [entry, format, outfile] of [
  ['src/script.ts', 'iife', 'dist/attune.js'],
  ['src/index.ts', 'esm', 'dist/attune.mjs'],
]) {
  // Internal-only property names start with one `_` (QueuedEvent._sending, …): shortened in the
  // tag. Two underscores are not ours (`__tcfapi`).
  await build({
    ...common,
    entryPoints: [entry],
    format,
    outfile,
    minifySyntax: true,
    mangleProps: format === 'iife' ? /^_[^_]/ : undefined,
  });
  const { code } = await minify(
    await readFile(outfile, 'utf8'),
    terserOptions(format === 'iife' && !process.env.NO_MANGLE),
  );
  if (!code) throw new Error(`terser produced nothing for ${outfile}`);
  await writeFile(outfile, code);
}
