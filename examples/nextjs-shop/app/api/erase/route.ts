/**
 * POST /api/erase: "delete my data". Erases the signed-in person (from the shop's signed
 * session, never from the request body) and this browser's anonymous profile (from the
 * Worker's first-party cookie), then ends the session and expires that cookie.
 */
import { cookies } from 'next/headers';
import { NextResponse } from 'next/server';
import { shopEnv } from '@/lib/env';
import { readSession, SESSION_COOKIE } from '@/lib/identity';
import { ANONYMOUS_ID_COOKIE, EXPIRED_ANONYMOUS_ID, erasePerson, type PersonRef } from '@/lib/people';

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export async function POST(): Promise<Response> {
  const jar = await cookies();
  const env = shopEnv();
  const targets: PersonRef[] = [];
  const userId = readSession(env.identitySecret, jar.get(SESSION_COOKIE)?.value);
  if (userId !== undefined) targets.push({ kind: 'user', id: userId });
  const anonymousId = jar.get(ANONYMOUS_ID_COOKIE)?.value;
  if (anonymousId !== undefined && ID.test(anonymousId)) targets.push({ kind: 'anon', id: anonymousId });

  const erased: string[] = [];
  try {
    for (const t of targets) {
      if (!(await erasePerson(t))) {
        return NextResponse.json({ error: 'the Worker refused the erasure' }, { status: 502 });
      }
      erased.push(t.kind);
    }
  } catch {
    return NextResponse.json({ error: 'the Worker is not reachable' }, { status: 502 });
  }
  const res = NextResponse.json({ erased });
  res.cookies.set(SESSION_COOKIE, '', { path: '/', maxAge: 0 });
  // The erased id must not name this browser to the edge any more (the SDK starts a new one).
  res.cookies.set(ANONYMOUS_ID_COOKIE, '', EXPIRED_ANONYMOUS_ID);
  return res;
}
