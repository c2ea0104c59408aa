/**
 * POST /api/signout: ends the demo session, and expires the Worker's `attune_aid`: that id
 * was merged into the person at sign-in, so the edge would go on personalizing this
 * browser's pages for them (on a shared computer, for the next person at it).
 */
import { NextResponse } from 'next/server';
import { SESSION_COOKIE } from '@/lib/identity';
import { ANONYMOUS_ID_COOKIE, EXPIRED_ANONYMOUS_ID } from '@/lib/people';

export async function POST(): Promise<Response> {
  const res = NextResponse.json({ ok: true });
  res.cookies.set(SESSION_COOKIE, '', { path: '/', maxAge: 0 });
  res.cookies.set(ANONYMOUS_ID_COOKIE, '', EXPIRED_ANONYMOUS_ID);
  return res;
}
