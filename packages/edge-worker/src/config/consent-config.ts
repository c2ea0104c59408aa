/**
 * A site's consent configuration (categories and policy version) as the edge enforces
 * and `/v1/config` serves it. Until the Directus sync lands, the built-in defaults.
 */
import { type ConsentConfig, DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';

/** The consent configuration in force for a site. */
export async function getConsentConfig(_env: Env, _siteId: string): Promise<ConsentConfig> {
  return DEFAULT_CONSENT_CONFIG;
}
