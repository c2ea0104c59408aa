import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';

// Two projects: unit tests of pure logic beside the code (node), and the real-browser
// suite (headless Chromium via playwright-core against dist/attune.js), which runs its
// files one at a time with generous timeouts for a loaded CI machine.
export default defineConfig({
  test: {
    reporters: reporters('browser-sdk'),
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'browser',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
