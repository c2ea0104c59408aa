// Builds the script-tag tracker, dist/attune.js (IIFE, ES2020, no global but
// window.attune): esbuild bundles, strips types and minifies, terser then minifies harder than
// esbuild can (constant objects such as LIMITS are inlined and their unused fields
// dropped), because every byte of the tag counts against its size budget.
// Also dist/attune.mjs, a minified, self-contained ESM bundle for module use without a bundler,
// and the npm package's entry, dist/index.js with dist/index.d.ts (see `library()`).
// `bundle()` is shared with scripts/feature-costs.mjs, which measures the tag's parts.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateDtsBundle } from 'dts-bundle-generator';
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

/**
 * Writes `file` (relative to the package) whole or not at all: the browser suites' site reads
 * dist/attune.js on every request, and test/npm-package.test.ts builds again while they may run.
 */
async function emit(file, text) {
  const path = join(root, file);
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, text);
  await rename(partial, path);
}

/**
 * The npm package's entry (package.json `publishConfig`): src/index.ts as readable ES2020 for the
 * customer's bundler, which minifies it (from this file or from the minified dist/attune.mjs,
 * an esbuild-minified app bundle differs by some 30 B gzipped) while stack traces and
 * breakpoints in development stay legible. Property names are not mangled, in any ESM build:
 * the Persistence interface's methods and the `_` fields of the QueuedEvents it stores are
 * public there. shared-schema's constants are bundled in (that package is not published);
 * the package's own dependencies (idb-keyval) stay imports, for the customer to install and
 * dedupe. With one .d.ts naming everything the API does, shared-schema's types inlined.
 */
async function library() {
  const { dependencies = {} } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['src/index.ts'],
    write: false,
    format: 'esm',
    bundle: true,
    target: 'es2020',
    platform: 'browser',
    external: Object.keys(dependencies),
    legalComments: 'none',
    logLevel: 'warning',
  });
  await emit('dist/index.js', result.outputFiles[0]?.text ?? '');
  const [types] = generateDtsBundle(
    [{ filePath: join(root, 'src/index.ts'), output: { noBanner: true, exportReferencedTypes: false } }],
    { preferredConfigPath: join(root, 'tsconfig.dts.json') },
  );
  if (!types) throw new Error('dts-bundle-generator produced no declarations for src/index.ts');
  await emit('dist/index.d.ts', types);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await mkdir(join(root, 'dist'), { recursive: true });
  for (const [entry, format, outfile] of [
    ['src/script.ts', 'iife', 'dist/attune.js'],
    ['src/index.ts', 'esm', 'dist/attune.mjs'],
  ]) {
    await emit(outfile, await bundle(entry, format, { mangle: !process.env.NO_MANGLE }));
  }
  await library();
}
