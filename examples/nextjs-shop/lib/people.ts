/**
 * Server-to-server calls to the Worker about one person: erasure ("delete my data") and
 * access, with the admin token that never leaves the shop's server.
 */
import { shopEnv } from './env.ts';

/** The cookie in which the Worker (edge-proxy mode) keeps this browser's anonymous id. */
export const ANONYMOUS_ID_COOKIE = 'attune_aid';

/**
 * Cookie options that expire `attune_aid`. The Worker's first-party collect writes it
 * host-only on `Path=/` (packages/edge-worker/src/proxy/cookies.ts), so it goes with the same
 * path and no Domain. No `Secure`: not needed to delete it over https, and refused over http.
 */
export const EXPIRED_ANONYMOUS_ID = { path: '/', maxAge: 0, sameSite: 'lax' } as const;

export type PersonRef = { kind: 'user'; id: string } | { kind: 'anon'; id: string };

function personPath(p: PersonRef): string {
  return `/v1/people/${encodeURIComponent(`${p.kind}:${p.id}`)}`;
}

/** Erases one person everywhere Attune keeps them; true when the Worker confirmed it (or knew nothing). */
export async function erasePerson(p: PersonRef): Promise<boolean> {
  const env = shopEnv();
  if (env.adminToken === undefined) throw new Error('erasure is not configured: set ATTUNE_ADMIN_TOKEN');
  const res = await fetch(`${env.workerUrl}${personPath(p)}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${env.adminToken}` },
    signal: AbortSignal.timeout(10_000),
  });
  return res.ok || res.status === 404;
}
