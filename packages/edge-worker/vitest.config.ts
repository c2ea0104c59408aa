import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { reporters } from '../../scripts/vitest-reporters.mjs';

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: '../../wrangler.toml' },
      miniflare: {
        bindings: {
          ATTUNE_SITE_SECRETS: JSON.stringify({
            demo: { identitySecret: 'test-identity-secret', serverKey: 'sk_test_server_key' },
          }),
          ADMIN_TOKEN: 'test-admin-token',
          HOOK_SECRET: 'test-hook-secret',
          DIRECTUS_TOKEN: 'test-directus-token',
          // Edge-proxy tests: a real fixture origin (an auxiliary Worker, below).
          ORIGIN_URL: 'http://origin.fixture.test',
          // Generous on a shared CI machine (a cold Durable Object can take long); the timeout
          // path is tested with an explicit budget of 0.
          DECISION_BUDGET_MS: '2000',
          // A test waits for a request's background work, which holds the store of its counts
          // until the interval since the last store is up: 1 s each would make the suites several
          // times slower; 0, a stats write per request, slowed the 10,000-request fuzz test as much.
          // The 1 s default is tested in src/observability/index.test.ts.
          STATS_FLUSH_INTERVAL_MS: '50',
        },
        // Outbound fetches go through the fixture origin Worker: it answers for
        // origin.fixture.test and directus.fixture.test and passes everything else through.
        outboundService: 'fixture-origin',
        workers: [
          {
            name: 'fixture-origin',
            modules: true,
            scriptPath: './src/proxy/fixtures/origin-worker.js',
            compatibilityDate: '2026-10-01',
          },
        ],
      },
    }),
  ],
  test: {
    include: ['src/**/*.test.ts'],
    reporters: reporters('edge-worker'),
    // The Worker logs one JSON line per request; the fuzz test alone sends 10,000. Keep warnings and errors.
    onConsoleLog: (log) => !log.startsWith('{"level":"info"'),
  },
});
