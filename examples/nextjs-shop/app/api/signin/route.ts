/**
 * POST /api/signin `{ userId }`: signs a demo customer in (session cookie) and returns the
 * identity signature the Worker requires before it trusts the userId.
 */
import { NextResponse } from 'next/server';
import { findDemoUser } from '@/lib/demo-users';
import { shopEnv } from '@/lib/env';
import {
  identitySignature,
  requestIsHttps,
  SESSION_COOKIE,
  SESSION_LIFETIME_SECONDS,
  sessionValue,
} from '@/lib/identity';

export async function POST(request: Request): Promise<Response> {
  const env = shopEnv();
  if (env.identitySecret === '') {
    return NextResponse.json(
      { error: 'sign-in is not configured: set ATTUNE_IDENTITY_SECRET' },
      { status: 503 },
    );
  }
  let userId: unknown;
  try {
    userId = ((await request.json()) as { userId?: unknown }).userId;
  } catch {
    return NextResponse.json({ error: 'expected a JSON body { "userId": "…" }' }, { status: 400 });
  }
  const user = typeof userId === 'string' ? findDemoUser(userId) : undefined;
  if (user === undefined) return NextResponse.json({ error: 'unknown demo user' }, { status: 400 });
  const res = NextResponse.json({
    userId: user.userId,
    signature: identitySignature(env.identitySecret, user.userId),
    // No traits: nothing Attune decides uses a name or an email, and identify() would put
    // them in the profile, the event log and Directus. Send only what a rule needs.
  });
  res.cookies.set(SESSION_COOKIE, sessionValue(env.identitySecret, user.userId), {
    httpOnly: true,
    sameSite: 'lax',
    // Over https only when the visitor came over https: the local shop is plain http.
    secure: requestIsHttps(request),
    path: '/',
    maxAge: SESSION_LIFETIME_SECONDS,
  });
  return res;
}
