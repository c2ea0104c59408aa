/**
 * Server-to-server calls to the Worker about one person, for "delete my data": who an id
 * is at the edge (`GET /v1/people/:id?scope=edge`) and erasure (`DELETE /v1/people/:id`),
 * with the site's privacy token, which never leaves the shop's server and reaches the
 * shop's own site only.
 */
import { ULID_PATTERN } from '@attune/shared-schema/constants';
import { shopEnv } from './env.ts';

/** The cookie in which the Worker (edge-proxy mode) keeps this browser's anonymous id. */
export const ANONYMOUS_ID_COOKIE = 'attune_aid';

/**
 * Cookie options that expire `attune_aid`. The Worker's first-party collect writes it
 * host-only on `Path=/` (packages/edge-worker/src/proxy/cookies.ts), so it goes with the same
 * path and no Domain. No `Secure`: not needed to delete it over https, and refused over http.
 */
export const EXPIRED_ANONYMOUS_ID = { path: '/', maxAge: 0, sameSite: 'lax' } as const;

/**
 * The cookie in which the Worker (edge-proxy mode) keeps this browser's consent choice, also
 * host-only on `Path=/` (expired with EXPIRED_ANONYMOUS_ID's options). The edge lets a fresh
 * visitor's grant in it mint a new `attune_aid`: after an erasure it would be the erased
 * visitor's grant, and the next visitor would get a 400-day id before answering the banner.
 */
export const CONSENT_COOKIE = 'attune_consent';

export type PersonRef = { kind: 'user'; id: string } | { kind: 'anon'; id: string };

/**
 * What the Worker answered to one erasure. `DELETE /v1/people/:id` answers 200
 * `{"erased": true, "personId", "anonymousIds": <count>}` whether or not the edge held
 * anything (Directus may still hold rows, so it always sends the erasure downstream): its
 * answer cannot say whether there was anyone to erase, which lookUpPerson tells. 503 when the edge part is done but the erasure could not be queued for
 * Directus (the same DELETE again finishes it), 400 for an unknown site or a malformed
 * person id, 401 for a wrong token (packages/edge-worker/src/admin/routes.ts). It
 * never answers 404 for a person it does not know.
 */
export type ErasureAnswer =
  /** `erasureId`: the key of the erasure's proof in Directus (absent from an older Worker's answer). */
  | { ok: true; erasureId?: string }
  | { ok: false; retryable: true; status: number }
  | { ok: false; retryable: false; status: number };

/** `?site=`: once the Worker serves more than one site, an erasure without it is a 400. */
export function personUrl(workerUrl: string, siteId: string, p: PersonRef): string {
  const id = encodeURIComponent(`${p.kind}:${p.id}`);
  return `${workerUrl}/v1/people/${id}?site=${encodeURIComponent(siteId)}`;
}

/** Thrown when the shop has no privacy token: erasure cannot work until it is configured. */
export class ErasureNotConfigured extends Error {
  constructor() {
    super('erasure is not configured: set ATTUNE_PRIVACY_TOKEN');
    this.name = 'ErasureNotConfigured';
  }
}

/**
 * Who an id is at the edge, from `GET /v1/people/:id?site=<site>&scope=edge`: 404
 * `not_found` when the edge holds nothing about it (no profile, alias, tombstone or seen
 * event), and then held only if Directus holds something of it (the same request without
 * `scope=edge`); else 200 with what it holds. `ownerUserId` is the signed-in person the id belongs
 * to: a browser merged at sign-in names its person in `aliasOf` (`user:<id>`), and once
 * erased with them in `erasedWith` (a DELETE of it erases that person again downstream).
 */
export type PersonLookup =
  | { ok: true; held: false }
  | { ok: true; held: true; ownerUserId: string | undefined }
  | { ok: false; retryable: boolean; status: number };

/** The edge's answer for one person, as far as the shop reads it. */
interface EdgeHoldings {
  aliasOf?: unknown;
  identity?: { personKey?: unknown };
  profile?: { userId?: unknown };
  erasedWith?: { personKey?: unknown; userId?: unknown };
}

function userIdOfKey(key: unknown): string | undefined {
  return typeof key === 'string' && key.startsWith('user:') ? key.slice('user:'.length) : undefined;
}

/** The signed-in person an edge answer names, if any (its first naming wins; they agree). */
export function ownerOf(held: EdgeHoldings): string | undefined {
  const userId = held.profile?.userId;
  return (
    userIdOfKey(held.aliasOf) ??
    userIdOfKey(held.identity?.personKey) ??
    (typeof userId === 'string' && userId !== '' ? userId : undefined) ??
    userIdOfKey(held.erasedWith?.personKey) ??
    (typeof held.erasedWith?.userId === 'string' ? held.erasedWith.userId : undefined)
  );
}

/**
 * The Worker's people route for `p` on the shop's site, with its privacy token: `GET` of the
 * edge's part alone (`edge`), `GET` of everything, or `DELETE`. Throws ErasureNotConfigured
 * without a token.
 */
function askWorker(p: PersonRef, ask: 'edge' | 'everywhere' | 'erase'): Promise<Response> {
  const env = shopEnv();
  if (env.privacyToken === undefined) throw new ErasureNotConfigured();
  return fetch(`${personUrl(env.workerUrl, env.siteId, p)}${ask === 'edge' ? '&scope=edge' : ''}`, {
    method: ask === 'erase' ? 'DELETE' : 'GET',
    headers: { authorization: `Bearer ${env.privacyToken}` },
    signal: AbortSignal.timeout(10_000),
  });
}

/**
 * A look-up the Worker did not answer 200: nothing held when it is the Worker's own "nothing
 * held" (another server's 404 is not to be believed), else a failure, worth retrying when the
 * Worker or Directus was briefly unavailable.
 */
function notHeldOrFailed(res: Response, body: unknown): PersonLookup {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  if (res.status === 404 && code === 'not_found') return { ok: true, held: false };
  return { ok: false, retryable: res.status === 503 || res.status === 502, status: res.status };
}

/** Asks the Worker who a person id is at the edge. Rejects when the Worker cannot be reached. */
export async function lookUpPerson(p: PersonRef): Promise<PersonLookup> {
  const res = await askWorker(p, 'edge');
  const body: unknown = await res.json().catch(() => undefined);
  const json = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : undefined;
  if (res.ok)
    return json !== undefined
      ? { ok: true, held: true, ownerUserId: ownerOf(json as EdgeHoldings) }
      : { ok: false, retryable: false, status: 502 };
  const answer = notHeldOrFailed(res, json);
  return answer.ok ? heldDownstream(p) : answer;
}

/**
 * Whether Directus holds anything of an id the edge no longer does (events logged for a
 * visitor whose profile is gone, a retention erasure still pending): such an id is erased
 * too, and its erasure's proof records that they asked. Its owner cannot be told (the edge
 * records it), as for any id the edge holds without one. Only the answer's status is read:
 * the events that follow it are not needed here.
 */
async function heldDownstream(p: PersonRef): Promise<PersonLookup> {
  const res = await askWorker(p, 'everywhere');
  if (res.ok) {
    await res.body?.cancel();
    return { ok: true, held: true, ownerUserId: undefined };
  }
  return notHeldOrFailed(res, await res.json().catch(() => undefined));
}

/** Erases one person everywhere Attune keeps them. Rejects when the Worker cannot be reached. */
export async function erasePerson(p: PersonRef): Promise<ErasureAnswer> {
  const res = await askWorker(p, 'erase');
  if (res.ok) {
    // The erasure's id: its proof in Directus is kept under it, the visitor's reference.
    const body: unknown = await res.json().catch(() => undefined);
    const id = (body as { erasureId?: unknown } | undefined)?.erasureId;
    return typeof id === 'string' && ULID_PATTERN.test(id) ? { ok: true, erasureId: id } : { ok: true };
  }
  await res.body?.cancel();
  if (res.status === 503) return { ok: false, retryable: true, status: res.status };
  return { ok: false, retryable: false, status: res.status };
}
