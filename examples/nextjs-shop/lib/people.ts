/**
 * Server-to-server calls to the Worker about one person: erasure ("delete my data"), with
 * the admin token that never leaves the shop's server, for the shop's own site.
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

/**
 * What the Worker answered to one erasure. `DELETE /v1/people/:id` answers 200 whether or
 * not the edge held anything (Directus may still hold rows, so it always sends the erasure
 * downstream), 503 when the edge part is done but the erasure could not be queued for
 * Directus (the same DELETE again finishes it), 400 for an unknown site or a malformed
 * person id, 401 for a wrong admin token (packages/edge-worker/src/admin/routes.ts). It
 * never answers 404 for a person it does not know.
 */
export type ErasureAnswer =
  | { ok: true }
  | { ok: false; retryable: true; status: number }
  | { ok: false; retryable: false; status: number };

/** `?site=`: once the Worker serves more than one site, an erasure without it is a 400. */
export function personUrl(workerUrl: string, siteId: string, p: PersonRef): string {
  const id = encodeURIComponent(`${p.kind}:${p.id}`);
  return `${workerUrl}/v1/people/${id}?site=${encodeURIComponent(siteId)}`;
}

/** Thrown when the shop has no admin token: erasure cannot work until it is configured. */
export class ErasureNotConfigured extends Error {
  constructor() {
    super('erasure is not configured: set ATTUNE_ADMIN_TOKEN');
    this.name = 'ErasureNotConfigured';
  }
}

/** Erases one person everywhere Attune keeps them. Rejects when the Worker cannot be reached. */
export async function erasePerson(p: PersonRef): Promise<ErasureAnswer> {
  const env = shopEnv();
  if (env.adminToken === undefined) throw new ErasureNotConfigured();
  const res = await fetch(personUrl(env.workerUrl, env.siteId, p), {
    method: 'DELETE',
    headers: { authorization: `Bearer ${env.adminToken}` },
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  if (res.ok) return { ok: true };
  if (res.status === 503) return { ok: false, retryable: true, status: res.status };
  return { ok: false, retryable: false, status: res.status };
}
