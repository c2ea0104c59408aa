/**
 * "Delete my data" on the shop's server: what an erasure request must carry, whom it
 * erases, and what the shop answers. The browser names its anonymous id in the body
 * (`{ "anonymousId": "<the SDK's id>" }`), because the `attune_aid` cookie exists only
 * through the edge proxy and only while analytics or personalization is granted; without
 * the body, a visitor who chose marketing only, withdrew consent, or came straight to the
 * shop would be told "done" while their consent proof, offers and events stayed.
 *
 * What it trusts: the signed-in person comes only from the shop's signed session cookie,
 * never from the body; the anonymous id (body or cookie) is not a secret (it travels in
 * collect bodies, decide URLs, Directus events and a readable cookie), and the Worker's
 * erasure of a browser merged at sign-in erases that browser's whole person. So each
 * anonymous id is first looked up at the edge: one that belongs to a signed-in person is
 * erased only by that person's session (else 403, and nothing is erased); one the edge
 * holds nothing about is not erased, and "done" is said only when someone was.
 */
import type { ErasureAnswer, PersonLookup, PersonRef } from './people.ts';

/** What a person id may look like (the Worker's person keys are `anon:<id>` / `user:<id>`). */
export const PERSON_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The largest erasure request body read; a real one is under 100 bytes. */
export const ERASE_BODY_LIMIT = 1024;

const EXPECTED = 'expected a JSON body {"anonymousId": "<this browser\'s anonymous id>"}';

export type ErasureRequest = { ok: true; anonymousId: string } | { ok: false; message: string };

/** Reads a request body as text, at most `limit` bytes; undefined when it is larger. */
export async function readBodyLimited(req: Request, limit = ERASE_BODY_LIMIT): Promise<string | undefined> {
  if (req.body === null) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** The erasure request's body, checked: a readable message for anything else. */
export function parseErasureRequest(text: string | undefined): ErasureRequest {
  if (text === undefined)
    return { ok: false, message: `the body is over ${ERASE_BODY_LIMIT} bytes; ${EXPECTED}` };
  if (text.trim() === '') return { ok: false, message: `the body is empty; ${EXPECTED}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: `the body is not JSON; ${EXPECTED}` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return { ok: false, message: `the body is not a JSON object; ${EXPECTED}` };
  const anonymousId: unknown = (json as Record<string, unknown>).anonymousId;
  if (anonymousId === undefined) return { ok: false, message: `anonymousId is missing; ${EXPECTED}` };
  if (typeof anonymousId !== 'string' || !PERSON_ID.test(anonymousId))
    return {
      ok: false,
      message: 'anonymousId: expected 1 to 128 letters, digits or _ . : - (the SDK’s attune.anonymousId())',
    };
  return { ok: true, anonymousId };
}

/**
 * Whom one request erases: the signed-in person (from the session), the anonymous id the
 * browser named, and the Worker's `attune_aid` cookie when it names another id (an older
 * id of this browser the edge still personalizes by). Each once, the person first.
 */
export function erasureTargets(who: {
  userId: string | undefined;
  anonymousId: string;
  cookieAnonymousId: string | undefined;
}): PersonRef[] {
  const targets: PersonRef[] = [];
  if (who.userId !== undefined) targets.push({ kind: 'user', id: who.userId });
  targets.push({ kind: 'anon', id: who.anonymousId });
  const cookie = who.cookieAnonymousId;
  if (cookie !== undefined && cookie !== who.anonymousId && PERSON_ID.test(cookie))
    targets.push({ kind: 'anon', id: cookie });
  return targets;
}

/** The shop's answer to an erasure request, before cookies. `erased` lists who was held and erased. */
export type ErasureOutcome =
  | { status: 200; body: { erased: PersonRef['kind'][]; references: string[] } }
  | { status: 403; body: { error: string } }
  | { status: 502 | 503; body: { error: string }; retryAfter?: string };

/** The Worker, as an erasure request uses it (lib/people.ts). */
export interface ErasureWorker {
  lookUp: (p: PersonRef) => Promise<PersonLookup>;
  erase: (p: PersonRef) => Promise<ErasureAnswer>;
}

export const BELONGS_TO_AN_ACCOUNT = 'this browser belongs to an account; sign in to erase it';

function unreachable(e: unknown): ErasureOutcome {
  if (e instanceof Error && e.name === 'ErasureNotConfigured')
    return { status: 503, body: { error: 'erasure is not configured on this shop' } };
  return { status: 502, body: { error: 'the Attune Worker is not reachable; try again' } };
}

function refused(answer: { retryable: boolean; status: number }, what: string): ErasureOutcome {
  return answer.retryable
    ? {
        status: 503,
        body: { error: `the ${what} could not be finished right now; try again in a few seconds` },
        retryAfter: '5',
      }
    : { status: 502, body: { error: `the Attune Worker refused the ${what} (${answer.status})` } };
}

/**
 * Looks every target up first, so that a request naming an id of someone else's account
 * erases nothing at all; then erases, in turn, those the edge holds. Stops at the first
 * failure (a retry of the whole request is safe: erasing a person twice is erasing them once).
 * `userId` is the session's signed-in person, the only one whose browsers may be named.
 */
export async function eraseAll(
  targets: PersonRef[],
  userId: string | undefined,
  worker: ErasureWorker,
): Promise<ErasureOutcome> {
  const held: PersonRef[] = [];
  for (const t of targets) {
    let found: PersonLookup;
    try {
      found = await worker.lookUp(t);
    } catch (e) {
      return unreachable(e);
    }
    if (!found.ok) return refused(found, 'look-up');
    if (!found.held) continue;
    if (t.kind === 'anon' && found.ownerUserId !== undefined && found.ownerUserId !== userId)
      return { status: 403, body: { error: BELONGS_TO_AN_ACCOUNT } };
    held.push(t);
  }
  const erased: PersonRef['kind'][] = [];
  // The erasures' ids, for the visitor to quote: each names the proof kept in Directus.
  const references: string[] = [];
  for (const t of held) {
    let answer: ErasureAnswer;
    try {
      answer = await worker.erase(t);
    } catch (e) {
      return unreachable(e);
    }
    if (!answer.ok) return refused(answer, 'erasure');
    erased.push(t.kind);
    if (answer.erasureId !== undefined) references.push(answer.erasureId);
  }
  return { status: 200, body: { erased, references } };
}
