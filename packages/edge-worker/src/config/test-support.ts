/**
 * Test support: the demo site's consent configuration as the edge last read it from
 * Directus, for tests whose Directus is not reachable.
 */
import { DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';
import { CONSENT_CONFIG_VERSION_KEY } from './consent-config.ts';

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
