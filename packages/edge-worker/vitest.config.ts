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
            demo: { identitySecret: 'test-identity-secret', serverKey: 'sk_test_server' },
          }),
          ADMIN_TOKEN: 'test-admin-token',
          HOOK_SECRET: 'test-hook-secret',
          DIRECTUS_TOKEN: 'test-directus-token',
        },
      },
    }),
  ],
  test: { include: ['src/**/*.test.ts'], reporters: reporters('edge-worker') },
});
