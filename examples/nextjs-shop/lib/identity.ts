/**
 * Identity on the shop's server: the signature Attune's Worker verifies before it trusts
 * a userId, and the shop's own signed session cookie for its demo sign-in. The demo site
 * takes expiring signatures (wrangler.toml: settings.identity.signatures), so one copied
 * out of a browser stops naming the person a day later.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

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

export const SESSION_COOKIE = 'shop_session';

/** `userId.signature`, so a visitor cannot claim another person's session by editing the cookie. */
export function sessionValue(secret: string, userId: string): string {
  return `${encodeURIComponent(userId)}.${createHmac('sha256', `session:${secret}`).update(userId).digest('hex')}`;
}

/** The userId of a valid session cookie value, or undefined. */
export function readSession(secret: string, value: string | undefined): string | undefined {
  if (!value || secret === '') return undefined;
  const dot = value.lastIndexOf('.');
  if (dot <= 0) return undefined;
  let userId: string;
  try {
    userId = decodeURIComponent(value.slice(0, dot));
  } catch {
    return undefined;
  }
  const expected = Buffer.from(sessionValue(secret, userId));
  const given = Buffer.from(value);
  return expected.length === given.length && timingSafeEqual(expected, given) ? userId : undefined;
}
