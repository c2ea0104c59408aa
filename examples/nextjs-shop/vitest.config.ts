/**
 * The shop's tests, as two projects. `unit`: pure modules of lib/ (no server, no browser),
 * seconds. `e2e`: the whole local system (Directus, the Worker under wrangler dev in
 * edge-proxy mode, the shop) on the test ports, driven by headless Chromium; its global
 * setup starts that system, so `--project unit` runs without it.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';

export default defineConfig({
  test: {
    reporters: reporters('nextjs-shop'),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['lib/**/*.test.ts'],
        },
        // The app's `@/` imports (tsconfig paths), for the tests of its route handlers.
        resolve: { alias: [{ find: /^@\//, replacement: fileURLToPath(new URL('./', import.meta.url)) }] },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          globalSetup: ['e2e/global-setup.ts'],
          // One system, one browser: the scenarios run in order, each in its own browser context.
          fileParallelism: false,
          sequence: { concurrent: false },
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
