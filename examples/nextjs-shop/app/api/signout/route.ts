/** POST /api/signout: ends the demo session. */
import { NextResponse } from 'next/server';
import { SESSION_COOKIE } from '@/lib/identity';

export async function POST(): Promise<Response> {
  const res = NextResponse.json({ ok: true });
  res.cookies.set(SESSION_COOKIE, '', { path: '/', maxAge: 0 });
  return res;
}
