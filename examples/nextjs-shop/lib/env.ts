/**
 * The shop server's settings, read from the environment at request time (not build
 * time), so one `next build` serves both `./attune up` and the end-to-end ports.
 */

export interface ShopEnv {
  /** Directus REST base, e.g. http://127.0.0.1:8055. */
  directusUrl: string;
  /**
   * Optional static token that can read the catalog (`products`) and nothing else: `./attune
   * up` gives the shop the read-only `attune-shop` user's token, never the Worker's
   * attune-sync token (which reads and deletes every visitor's rows). Public read needs none.
   */
  directusToken: string | undefined;
  /** The Attune Worker (server-to-server: erasure, and the first-party proxy when visited directly). */
  workerUrl: string;
  /** The site's identity secret (same value as the Worker's ATTUNE_SITE_SECRETS.<site>.identitySecret). */
  identitySecret: string;
  /**
   * The site's privacy token (the Worker's ATTUNE_SITE_SECRETS.<site>.privacyToken), used only
   * server-side for "delete my data". A shop set up before it existed has ATTUNE_ADMIN_TOKEN,
   * the Worker's admin token, which still works (and reaches every site: move to the site's).
   */
  privacyToken: string | undefined;
  /** The site's public write key. */
  writeKey: string;
  /**
   * The site's id at the Worker (ATTUNE_SITES), named in erasures (`?site=`), which a
   * Worker serving more than one site needs. Default `demo`, the site of `pk_demo_attune`.
   */
  siteId: string;
}

export function shopEnv(): ShopEnv {
  const e = process.env;
  return {
    directusUrl: (e.DIRECTUS_URL ?? 'http://127.0.0.1:8055').replace(/\/+$/, ''),
    directusToken: e.DIRECTUS_TOKEN || undefined,
    workerUrl: (e.ATTUNE_WORKER_URL ?? 'http://127.0.0.1:8787').replace(/\/+$/, ''),
    identitySecret: e.ATTUNE_IDENTITY_SECRET ?? '',
    privacyToken: e.ATTUNE_PRIVACY_TOKEN || e.ATTUNE_ADMIN_TOKEN || undefined,
    writeKey: e.ATTUNE_WRITE_KEY ?? 'pk_demo_attune',
    siteId: e.ATTUNE_SITE_ID || 'demo',
  };
}
