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

// Property names no page or server sees, shortened in the tag: internal-only fields start with
// one `_` (QueuedEvent._sending, …; two underscores are not ours: `__tcfapi`), plus the methods of
// the Persistence interface (the tag always uses the built-in one; the ESM build keeps them).
const INTERNAL_PROPS = /^(_[^_]|(load|save|store|forget|adopt|wipe)$)/;

for (const [entry, format, outfile] of [
  ['src/script.ts', 'iife', 'dist/attune.js'],
  ['src/index.ts', 'esm', 'dist/attune.mjs'],
]) {
  await build({
    ...common,
    entryPoints: [entry],
    format,
    outfile,
    minifySyntax: true,
    mangleProps: format === 'iife' ? INTERNAL_PROPS : undefined,
  });
  const { code } = await minify(
    await readFile(outfile, 'utf8'),
    terserOptions(format === 'iife' && !process.env.NO_MANGLE),
  );
  if (!code) throw new Error(`terser produced nothing for ${outfile}`);
  await writeFile(outfile, code);
}
