/**
 * Test support: a site's consent configuration as the edge last read it from Directus, for
 * tests whose Directus is not reachable: the built-ins, or a marketer's change.
 */
import { DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';
import { CONSENT_CONFIG_VERSION_KEY, invalidateConsentConfig } from './consent-config.ts';

/**
 * Keeps the built-in categories and policy version as the demo site's last good configuration,
 * under the current generation (a copy from before an invalidation is not used).
 */
export async function holdBuiltInConsentConfig(bindings: Env): Promise<void> {
  const generation = (await bindings.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)) ?? '0';
  await bindings.EDGE_CACHE.put(
    'consent-config:last-good:demo',
    JSON.stringify({ generation, config: DEFAULT_CONSENT_CONFIG }),
  );
}

/**
 * Runs `test` while a marketer has disabled the category `key` of `siteId` (its configuration
 * in KV, under a policy version of its own), then drops that configuration again.
 */
export async function withCategoryDisabled(
  bindings: Env,
  siteId: string,
  key: string,
  test: () => Promise<void>,
): Promise<void> {
  const generation = await invalidateConsentConfig(bindings);
  const config = {
    policyVersion: `1.no-${key}`,
    categories: DEFAULT_CONSENT_CONFIG.categories.map((c) => (c.key === key ? { ...c, enabled: false } : c)),
  };
  await bindings.EDGE_CACHE.put(`consent-config:${generation}:${siteId}`, JSON.stringify(config));
  try {
    await test();
  } finally {
    await invalidateConsentConfig(bindings);
  }
}
