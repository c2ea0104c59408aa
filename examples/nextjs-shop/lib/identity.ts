/**
 * Identity on the shop's server: the signature Attune's Worker verifies before it trusts
 * a userId, and the shop's own signed session cookie for its demo sign-in. The demo site
 * takes expiring signatures (wrangler.toml: settings.identity.signatures), so one copied
 * out of a browser stops naming the person a day later; the session cookie's value carries
 * its own signed expiry for the same reason (30 days).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How long a signature names the person. The SDK keeps the signature of its last `identify`;
 * once it has expired, the Worker takes that browser's events as the browser's, which still
 * reach the person it signed in as (the sign-in linked them), so nothing is lost.
 */
export const SIGNATURE_LIFETIME_SECONDS = 24 * 60 * 60;

/**
 * The identity signature for `identify(userId, traits, { signature })`: `<expiry>.<hex>`,
 * the HMAC-SHA256 of `<expiry>.<userId>` with the site's identity secret, `<expiry>` a Unix
 * time in seconds.
 */
export function identitySignature(secret: string, userId: string, now: number = Date.now()): string {
  const expiry = Math.floor(now / 1000) + SIGNATURE_LIFETIME_SECONDS;
  return `${expiry}.${createHmac('sha256', secret).update(`${expiry}.${userId}`).digest('hex')}`;
}

/**
 * The signature for a site taking browser-bound signatures (settings.identity.signatures:
 * "bound"): `<expiry>.<hex>`, the HMAC-SHA256 of `<expiry>.<userId>.<SHA-256 hex of
 * anonymousId>`, where `anonymousId` is the browser signing in (the tag's
 * `attune.anonymousId()`, or the `attune_aid` cookie behind the edge proxy). The Worker takes
 * it for that browser only, so a signature copied out of a page or a log signs in no other
 * browser. The demo site does not take this form; a shop that does signs again
 * whenever the browser's anonymous id changes (after `reset()`).
 */
export function browserBoundSignature(
  secret: string,
  userId: string,
  anonymousId: string,
  now: number = Date.now(),
): string {
  const expiry = Math.floor(now / 1000) + SIGNATURE_LIFETIME_SECONDS;
  const browser = createHash('sha256').update(anonymousId).digest('hex');
  return `${expiry}.${createHmac('sha256', secret).update(`${expiry}.${userId}.${browser}`).digest('hex')}`;
}

export const SESSION_COOKIE = 'shop_session';

/**
 * How long a sign-in lasts: the session cookie's max-age, and the expiry signed into its value,
 * which the server checks (a copied cookie's holder decides its cookie's own expiry).
 */
export const SESSION_LIFETIME_SECONDS = 30 * 24 * 60 * 60;

/**
 * The session's HMAC-SHA256 of `<expiry>.<userId>`. Its key is not the identity signature's
 * (which the browser sees, over the same text) nor the never-expiring form's (`session:`,
 * over the user id alone): neither can pass for a session.
 */
function sessionMac(secret: string, expiry: string, userId: string): string {
  return createHmac('sha256', `session-expiring:${secret}`).update(`${expiry}.${userId}`).digest('hex');
}

/**
 * `<expiry>.<userId>.<signature>`, `<expiry>` a Unix time in seconds: a visitor cannot claim
 * another person's session, or a longer one, by editing the cookie.
 */
export function sessionValue(secret: string, userId: string, now: number = Date.now()): string {
  const expiry = String(Math.floor(now / 1000) + SESSION_LIFETIME_SECONDS);
  return `${expiry}.${encodeURIComponent(userId)}.${sessionMac(secret, expiry, userId)}`;
}

/**
 * The userId of a valid, unexpired session cookie value, or undefined: an expired value, or
 * one of the earlier form without an expiry, is signed out.
 */
export function readSession(
  secret: string,
  value: string | undefined,
  now: number = Date.now(),
): string | undefined {
  if (!value || secret === '') return undefined;
  const first = value.indexOf('.');
  const last = value.lastIndexOf('.');
  if (first <= 0 || last <= first) return undefined;
  const expiry = value.slice(0, first);
  if (!/^\d{1,12}$/.test(expiry)) return undefined;
  let userId: string;
  try {
    userId = decodeURIComponent(value.slice(first + 1, last));
  } catch {
    return undefined;
  }
  // The whole value compared in constant time, as the signature alone would be.
  const expected = Buffer.from(
    `${expiry}.${encodeURIComponent(userId)}.${sessionMac(secret, expiry, userId)}`,
  );
  const given = Buffer.from(value);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  return Number(expiry) * 1000 > now ? userId : undefined;
}

/**
 * Whether the visitor's request came over https: its URL, or X-Forwarded-Proto as the Worker's
 * edge proxy (and Next.js itself) sets it. A client that claims https over http only gets a
 * cookie its own browser will not send back over http.
 */
export function requestIsHttps(request: Request): boolean {
  if (new URL(request.url).protocol === 'https:') return true;
  return request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}
