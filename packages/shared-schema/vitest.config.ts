import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    reporters: reporters('shared-schema'),
    // Property tests run hundreds of cases; CI and dev machines are shared, so allow time.
    testTimeout: 30_000,
  },
});
