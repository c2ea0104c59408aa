/**
 * The shop server's settings, read from the environment at request time (not build
 * time), so one `next build` serves both `./attune up` and the end-to-end ports.
 */

export interface ShopEnv {
  /** Directus REST base, e.g. http://127.0.0.1:8055. */
  directusUrl: string;
  /** Optional static token with read access to the catalog (public read needs none). */
  directusToken: string | undefined;
  /** The Attune Worker (server-to-server: erasure, and the first-party proxy when visited directly). */
  workerUrl: string;
  /** The site's identity secret (same value as the Worker's ATTUNE_SITE_SECRETS.<site>.identitySecret). */
  identitySecret: string;
  /** The Worker's admin token, used only server-side for "delete my data". */
  adminToken: string | undefined;
  /** The site's public write key. */
  writeKey: string;
}

export function shopEnv(): ShopEnv {
  const e = process.env;
  return {
    directusUrl: (e.DIRECTUS_URL ?? 'http://127.0.0.1:8055').replace(/\/+$/, ''),
    directusToken: e.DIRECTUS_TOKEN || undefined,
    workerUrl: (e.ATTUNE_WORKER_URL ?? 'http://127.0.0.1:8787').replace(/\/+$/, ''),
    identitySecret: e.ATTUNE_IDENTITY_SECRET ?? '',
    adminToken: e.ATTUNE_ADMIN_TOKEN || undefined,
    writeKey: e.ATTUNE_WRITE_KEY ?? 'pk_demo_attune',
  };
}
