/**
 * POST /api/erase: "delete my data". Body `{ "anonymousId": "<attune.anonymousId()>" }`.
 * Erases the signed-in person (from the shop's signed session, never from the body), the
 * anonymous id the browser names, and the Worker's `attune_aid` cookie's id when it
 * differs, each only if the edge holds it; 403 when a named id belongs to an account other
 * than the session's. When someone was erased, ends the session and expires that cookie and
 * the Worker's `attune_consent` (the erased visitor's choice).
 * What it trusts: lib/erasure.ts.
 */
import { cookies } from 'next/headers';
import { NextResponse } from 'next/server';
import { shopEnv } from '@/lib/env';
import { eraseAll, erasureTargets, parseErasureRequest, readBodyLimited } from '@/lib/erasure';
import { readSession, SESSION_COOKIE } from '@/lib/identity';
import {
  ANONYMOUS_ID_COOKIE,
  CONSENT_COOKIE,
  EXPIRED_ANONYMOUS_ID,
  erasePerson,
  lookUpPerson,
} from '@/lib/people';

export async function POST(req: Request): Promise<Response> {
  let text: string | undefined;
  try {
    text = await readBodyLimited(req);
  } catch {
    return NextResponse.json({ error: 'the body could not be read' }, { status: 400 });
  }
  const request = parseErasureRequest(text);
  if (!request.ok) return NextResponse.json({ error: request.message }, { status: 400 });

  const jar = await cookies();
  const userId = readSession(shopEnv().identitySecret, jar.get(SESSION_COOKIE)?.value);
  const targets = erasureTargets({
    userId,
    anonymousId: request.anonymousId,
    cookieAnonymousId: jar.get(ANONYMOUS_ID_COOKIE)?.value,
  });
  const outcome = await eraseAll(targets, userId, { lookUp: lookUpPerson, erase: erasePerson });
  if (outcome.status !== 200) {
    const headers =
      'retryAfter' in outcome && outcome.retryAfter ? { 'retry-after': outcome.retryAfter } : undefined;
    return NextResponse.json(outcome.body, { status: outcome.status, headers });
  }
  const res = NextResponse.json(outcome.body);
  // Nobody erased, nothing changed: the visitor stays signed in.
  if (outcome.body.erased.length === 0) return res;
  res.cookies.set(SESSION_COOKIE, '', { path: '/', maxAge: 0 });
  // The erased id must not name this browser to the edge any more (the SDK starts a new one).
  res.cookies.set(ANONYMOUS_ID_COOKIE, '', EXPIRED_ANONYMOUS_ID);
  // Nor may the erased visitor's grant: the edge would mint a new id under it for whoever is next.
  res.cookies.set(CONSENT_COOKIE, '', EXPIRED_ANONYMOUS_ID);
  return res;
}
