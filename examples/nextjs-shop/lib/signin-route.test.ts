/**
 * POST /api/signin's answer carries no personal details for identify(); its session cookie: its max-age is the value's own lifetime (30 days), and
 * it is Secure when the visitor's request came over https (directly, or as the Worker's edge
 * proxy reports with X-Forwarded-Proto), so a copy is not sent over plain http.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readSession, SESSION_COOKIE } from './identity.ts';

const SECRET = 'a-long-identity-secret';

async function signInAnswer(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const { POST } = await import('../app/api/signin/route.ts');
  return POST(
    new Request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ userId: 'user_ada' }),
    }),
  );
}

async function signIn(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await signInAnswer(url, headers);
  expect(res.status).toBe(200);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  expect(cookie).toBeDefined();
  return cookie ?? '';
}

beforeEach(() => {
  vi.stubEnv('ATTUNE_IDENTITY_SECRET', SECRET);
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('POST /api/signin', () => {
  it('sets a session that names the person, for 30 days', async () => {
    const cookie = await signIn('http://127.0.0.1:3000/api/signin');
    expect(cookie).toMatch(/Max-Age=2592000/);
    expect(cookie).toMatch(/HttpOnly/i);
    const value = decodeURIComponent(/^[^=]+=([^;]*)/.exec(cookie)?.[1] ?? '');
    expect(readSession(SECRET, value)).toBe('user_ada');
  });

  it('gives the page no name or email to pass to identify() (they would land in the event log)', async () => {
    const body = (await (await signInAnswer('http://127.0.0.1:3000/api/signin')).json()) as Record<
      string,
      unknown
    >;
    expect(body.userId).toBe('user_ada');
    expect(JSON.stringify(body)).not.toMatch(/ada@example\.com|Lovelace/);
  });

  it('is Secure over https, and not over plain http (the local shop)', async () => {
    expect(await signIn('https://shop.example/api/signin')).toMatch(/; Secure/i);
    expect(await signIn('http://127.0.0.1:3000/api/signin', { 'x-forwarded-proto': 'https' })).toMatch(
      /; Secure/i,
    );
    expect(await signIn('http://127.0.0.1:3000/api/signin')).not.toMatch(/Secure/i);
    expect(await signIn('http://127.0.0.1:3000/api/signin', { 'x-forwarded-proto': 'http' })).not.toMatch(
      /Secure/i,
    );
  });
});
