/**
 * Test support for the people and admin routes: the demo site beside a second site, each
 * with its own privacy token, as a deployment serving two shops is configured.
 */
import { env } from 'cloudflare:workers';

export const DEMO_PRIVACY_TOKEN = 'demo-privacy-token-0123456789';
export const OTHER_PRIVACY_TOKEN = 'other-privacy-token-0123456789';

/** Bindings with the demo site and site `other`, holding these privacy tokens. */
export function twoSitesEnv(demo = DEMO_PRIVACY_TOKEN, other = OTHER_PRIVACY_TOKEN): Env {
  return {
    ...env,
    ATTUNE_SITES: JSON.stringify([
      { id: 'demo', writeKey: 'pk_demo_attune', allowedOrigins: ['http://localhost:3000'] },
      { id: 'other', writeKey: 'pk_other_attune', allowedOrigins: ['http://other.test'] },
    ]),
    ATTUNE_SITE_SECRETS: JSON.stringify({
      demo: { identitySecret: 'test-identity-secret', serverKey: 'sk_test_server_key', privacyToken: demo },
      other: {
        identitySecret: 'other-identity-secret',
        serverKey: 'sk_other_server_key',
        privacyToken: other,
      },
    }),
  } as unknown as Env;
}
