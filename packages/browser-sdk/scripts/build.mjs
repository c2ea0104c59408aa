// Builds the script-tag tracker, dist/attune.js (IIFE, ES2020, no global but
// window.attune): esbuild bundles, strips types and minifies, terser then minifies harder than
// esbuild can (constant objects such as LIMITS are inlined and their unused fields
// dropped), because every byte of the tag counts against its size budget.
// Also dist/attune.mjs, an ESM bundle for module use without a bundler.
// `bundle()` is shared with scripts/feature-costs.mjs, which measures the tag's parts.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { minify } from 'terser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Property names no page or server sees, shortened in the tag: internal-only fields start with
// one `_` (QueuedEvent._sending, …; two underscores are not ours: `__tcfapi`), plus the methods of
// the Persistence interface (the tag always uses the built-in one; the ESM build keeps them).
const INTERNAL_PROPS = /^(_[^_]|(load|save|store|forget|adopt|wipe|leave|rejoin)$)/;

/** Bundles `entry` (relative to the package) and minifies it; `plugins` swap modules (feature costs). */
export async function bundle(entry, format, { plugins = [], mangle = true } = {}) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    format,
    bundle: true,
    write: false,
    target: 'es2020',
    platform: 'browser',
    legalComments: 'none',
    logLevel: 'warning',
    // Fully minified before terser too: terser's output then gzips 3 B smaller than from syntax-only.
    minify: true,
    mangleProps: format === 'iife' ? INTERNAL_PROPS : undefined,
    plugins,
  });
  const { code } = await minify(result.outputFiles[0]?.text ?? '', {
    ecma: 2020,
    // The sources are ES modules (strict); the tag does not need the `"use strict"` directive
    // (nothing in it behaves differently in sloppy mode: no `this`, no undeclared assignments).
    module: format === 'iife' && mangle,
    // Top-level names of the IIFE are private; the ESM bundle's exports keep theirs.
    toplevel: format === 'iife' && mangle,
    // Inline only simple functions: copying bigger bodies (and their strings) into callers costs bytes.
    // Statements stay statements: joined into comma sequences they gzip 2 B larger.
    compress: {
      passes: 3,
      unsafe: true,
      unsafe_arrows: true,
      pure_getters: true,
      inline: 1,
      sequences: false,
    },
    mangle: true,
    format: { comments: false },
  });
  if (!code) throw new Error(`terser produced nothing for ${entry}`);
  return code;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await mkdir(join(root, 'dist'), { recursive: true });
  for (const [entry, format, outfile] of [
    ['src/script.ts', 'iife', 'dist/attune.js'],
    ['src/index.ts', 'esm', 'dist/attune.mjs'],
  ]) {
    await writeFile(join(root, outfile), await bundle(entry, format, { mangle: !process.env.NO_MANGLE }));
  }
}
