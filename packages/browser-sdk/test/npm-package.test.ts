/**
 * The package as a customer gets it from npm: `pnpm pack` (whose prepack builds) and the
 * tarball unpacked into a temporary project's node_modules, beside idb-keyval (its one
 * dependency, linked from the workspace: no network). Its manifest is read, a strict
 * TypeScript consumer is type-checked against it, plain Node imports it (SSR), and a
 * plain-JS app bundled by esbuild without a TypeScript loader runs in headless Chromium and
 * delivers its page view to a loopback collector once consent is given.
 * Ports 19300 (site) and 19301 (collector).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, tagStarted } from './chromium.ts';
import { type Collector, type Site, startCollector, startSite, until } from './servers.ts';

declare global {
  interface Window {
    attune: import('../src/attune.ts').Attune;
  }
}

const run = promisify(execFile);
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** What `package.json` says, as far as this test reads it. */
interface Manifest {
  exports?: unknown;
  main?: string;
  types?: string;
  sideEffects?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Every file path an `exports` map can lead to (its string leaves). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets);
  return [];
}

let project = '';
let installed = '';

/** Writes `text` to `file` in the temporary project. */
const put = (file: string, text: string) => writeFile(join(project, file), text);

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'attune-npm-'));
  await run('pnpm', ['pack', '--pack-destination', project], { cwd: PACKAGE_ROOT });
  const tarball = (await readdir(project)).find((name) => name.endsWith('.tgz'));
  if (!tarball) throw new Error(`pnpm pack left no tarball in ${project}`);
  await run('tar', ['-xzf', join(project, tarball), '-C', project]);
  await mkdir(join(project, 'node_modules/@attune'), { recursive: true });
  installed = join(project, 'node_modules/@attune/browser-sdk');
  await rename(join(project, 'package'), installed);
  await symlink(
    await realpath(join(PACKAGE_ROOT, 'node_modules/idb-keyval')),
    join(project, 'node_modules/idb-keyval'),
  );
  await put('package.json', JSON.stringify({ name: 'shop', private: true, type: 'module' }));
});

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe('npm i @attune/browser-sdk: the packed package, as a customer installs it', () => {
  it('its manifest names only files it ships, and only dependencies npm has', async () => {
    const text = await readFile(join(installed, 'package.json'), 'utf8');
    expect(text).not.toContain('workspace:');
    const manifest = JSON.parse(text) as Manifest;
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const)
      expect(Object.keys(manifest[field] ?? {}).filter((name) => name.startsWith('@attune/'))).toEqual([]);
    expect(Object.keys(manifest.dependencies ?? {})).toEqual(['idb-keyval']);
    expect(manifest.exports).toEqual({
      '.': { types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' },
    });
    const targets = [...exportTargets(manifest.exports), manifest.main, manifest.types];
    expect(targets.filter((file) => !file || !existsSync(join(installed, file)))).toEqual([]);
    // No TypeScript source to compile: what runs is JavaScript, what types is one declaration file.
    expect(targets.filter((file) => /(?<!\.d)\.[cm]?tsx?$/.test(file ?? ''))).toEqual([]);
    // Each bare import of the entry is a declared dependency (shared-schema is bundled in).
    const entry = await readFile(join(installed, 'dist/index.js'), 'utf8');
    const imported = [...entry.matchAll(/\bfrom\s*["']([^"'./][^"']*)["']/g)].map((match) => match[1]);
    expect(imported.filter((name) => !(name && name in (manifest.dependencies ?? {})))).toEqual([]);
    // The declarations stand alone: nothing imported (no shared-schema, no zod).
    const types = await readFile(join(installed, 'dist/index.d.ts'), 'utf8');
    expect(types.match(/\bfrom\s*["']|\bimport\s*\(|\brequire\s*\(|reference\s+(types|path)=/g)).toBeNull();
    expect(manifest.sideEffects).toBe(false);
  });

  it('a strict TypeScript project type-checks against it (moduleResolution bundler, node16 and nodenext)', async () => {
    await put(
      'consumer.ts',
      `import { type Attune, type ConsentSnapshot, type DecideResponse, createAttune } from '@attune/browser-sdk';

const attune: Attune = createAttune({
  endpoint: 'https://edge.example.com',
  writeKey: 'pk_live_1',
  spaPageViews: true,
  onError: (error) => console.warn(error.code, error.message, error.errors?.[0]?.path),
});
attune.consent.set({ analytics: true }, 'banner');
const unsubscribe: () => void = attune.consent.onChange((state: ConsentSnapshot) => {
  const granted: boolean | undefined = state.categories['analytics'];
  console.log(state.decided, state.policyVersion, granted);
});
unsubscribe();
attune.track('product.viewed', { productId: 'p-1', price: 12.5, tags: ['a'], extra: null });

export async function heroTitle(): Promise<string | undefined> {
  const answer: DecideResponse = await attune.decide(['hero']);
  const title: string | undefined = answer.decisions['hero']?.title;
  const labels: string[] = (await attune.consent.config()).categories.map((category) => category.label);
  return title ?? labels[0];
}

// The types are real, not \`any\`: each mistake below must be an error.
// @ts-expect-error an option that does not exist
createAttune({ endpoint: '', writeKey: '', flushEvery: 5 });
// @ts-expect-error the write key is required
createAttune({ endpoint: '' });
// @ts-expect-error a property value must be JSON
attune.track('product.viewed', { at: new Date() });
`,
    );
    const strict = {
      strict: true,
      noEmit: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false,
      target: 'ES2022',
      lib: ['ES2022', 'DOM'],
      types: [],
    };
    const configs = {
      'tsconfig.bundler.json': { ...strict, module: 'ESNext', moduleResolution: 'Bundler' },
      'tsconfig.node16.json': { ...strict, module: 'Node16', moduleResolution: 'Node16' },
      'tsconfig.nodenext.json': { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext' },
    };
    const results = await Promise.all(
      Object.entries(configs).map(async ([file, compilerOptions]) => {
        await put(file, JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
        return run(process.execPath, [TSC, '-p', file], { cwd: project }).then(
          () => `${file}: ok`,
          (error: { stdout?: string }) => `${file}: ${error.stdout ?? String(error)}`,
        );
      }),
    );
    expect(results).toEqual([
      'tsconfig.bundler.json: ok',
      'tsconfig.node16.json: ok',
      'tsconfig.nodenext.json: ok',
    ]);
  });

  it('plain Node imports it without touching browser globals (server-side rendering)', async () => {
    await put(
      'ssr.mjs',
      `const touched = [];
for (const name of ['window', 'document', 'navigator', 'location', 'history', 'localStorage', 'indexedDB', 'addEventListener'])
  Object.defineProperty(globalThis, name, { configurable: true, get: () => void touched.push(name) });
const sdk = await import('@attune/browser-sdk');
console.log(JSON.stringify({ touched, exports: Object.keys(sdk).sort(), version: sdk.VERSION }));
`,
    );
    const { stdout } = await run(process.execPath, ['ssr.mjs'], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({
      touched: [],
      exports: ['VERSION', 'createAttune', 'googleConsentSignals', 'tcfCategories'],
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
  });

  describe('a plain-JS app bundled by esbuild, in Chromium', () => {
    let servers: { collector: Collector; site: Site; browser: Browser } | undefined;

    afterAll(async () => {
      await servers?.browser.close();
      await servers?.site.close();
      await servers?.collector.close();
    });

    it('sends nothing before a choice, and its page view once analytics is granted', async () => {
      const collector = await startCollector(19301);
      // A bundler without TypeScript for node_modules, as many apps' are: TypeScript reaching it fails the build.
      const noTypeScript: Plugin = {
        name: 'no-typescript',
        setup(bundler) {
          bundler.onLoad({ filter: /\.[cm]?tsx?$/ }, ({ path }) => ({
            errors: [{ text: `the app's bundler cannot load TypeScript: ${path}` }],
          }));
        },
      };
      await put(
        'app.js',
        `import { createAttune } from '@attune/browser-sdk';
window.attune = createAttune({ endpoint: ${JSON.stringify(collector.url)}, writeKey: 'pk_test', flushInterval: 100 });
`,
      );
      await build({
        absWorkingDir: project,
        entryPoints: ['app.js'],
        outfile: 'app.bundle.js',
        bundle: true,
        format: 'iife',
        platform: 'browser',
        target: 'es2020',
        minify: true,
        logLevel: 'silent',
        plugins: [noTypeScript],
      });
      // The test site serves the app's bundle where the script tag would be.
      const site = await startSite(19300, collector.url, join(project, 'app.bundle.js'));
      servers = { collector, site, browser: await launchChromium() };
      const page = await servers.browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${site.url}/npm-app`);
      await tagStarted(page);
      // The automatic page view waits for a choice: three flush intervals go by with nothing sent.
      await page.waitForTimeout(300);
      expect(collector.requests.filter((request) => request.path === '/v1/collect')).toEqual([]);
      await page.evaluate(() => window.attune.consent.set({ analytics: true }));
      await until('the page view', () => collector.events.some((event) => event.name === 'page.viewed'));
      const view = collector.events.find((event) => event.name === 'page.viewed');
      expect(view?.context?.page?.path).toBe('/npm-app');
      expect(view?.context?.consent?.categories).toMatchObject({ analytics: true });
      expect(collector.invalid).toEqual([]);
      expect(errors).toEqual([]);
    });
  });
});
