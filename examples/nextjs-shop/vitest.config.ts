/**
 * The shop's end-to-end suite: the whole local system (Directus, the Worker under
 * wrangler dev in edge-proxy mode, the shop) on the test ports, driven by headless Chromium.
 */
import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';

export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    // One system, one browser: the scenarios run in order, each in its own browser context.
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 120_000,
    hookTimeout: 900_000,
    reporters: reporters('nextjs-shop'),
  },
});
