/**
 * Identity on the shop's server: the signature Attune's Worker verifies before it trusts
 * a userId (lower-case hex HMAC-SHA256 of the userId with the site's identity secret),
 * and the shop's own signed session cookie for its demo sign-in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The identity signature for `identify(userId, traits, { signature })`. */
export function identitySignature(secret: string, userId: string): string {
  return createHmac('sha256', secret).update(userId).digest('hex');
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
