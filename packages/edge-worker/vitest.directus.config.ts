/**
 * Integration tests against a real local Directus (test/directus/): the global setup
 * installs/bootstraps/starts Directus on 127.0.0.1:18055 (fresh data dir) and the Worker
 * under wrangler dev on :18057; the tests run inside workerd and reach both over HTTP.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';
import { DIRECTUS_TEST } from './test/directus/constants.mjs';

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: '../../wrangler.toml' },
      miniflare: {
        bindings: {
          ATTUNE_SITE_SECRETS: JSON.stringify({
            demo: { identitySecret: 'test-identity-secret', serverKey: DIRECTUS_TEST.serverKey },
          }),
          ADMIN_TOKEN: DIRECTUS_TEST.adminToken,
          HOOK_SECRET: DIRECTUS_TEST.hookSecret,
          DIRECTUS_TOKEN: DIRECTUS_TEST.syncToken,
          DIRECTUS_URL: DIRECTUS_TEST.url,
          // As in vitest.config.ts: a test waits for the store of its requests' counts.
          STATS_FLUSH_INTERVAL_MS: '50',
        },
      },
    }),
  ],
  test: {
    include: ['test/directus/**/*.test.ts'],
    globalSetup: ['./test/directus/global-setup.mjs'],
    // One Directus, shared state: files run one after another.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: reporters('edge-worker-directus'),
  },
});
