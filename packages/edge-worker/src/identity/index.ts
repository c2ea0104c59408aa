/**
 * Verified identity: a `userId` counts only with a valid HMAC-SHA256 signature made by
 * the site's backend with its identity secret; person keys (`anon:<id>`, `user:<id>`).
 */
import type { PersonKey } from '../profile/types.ts';
import { hmacHex, timingSafeEqualText } from './crypto.ts';

export { profileObjectName, profileStub } from '../profile/client.ts';
export { hmacHex, timingSafeEqualText } from './crypto.ts';

/** The signature a site's backend computes for a user id: HMAC-SHA256(identitySecret, userId), hex. */
export function signUserId(secret: string, userId: string): Promise<string> {
  return hmacHex(secret, userId);
}

/**
 * An identity secret shorter than this verifies nothing: a placeholder (the example file's
 * `change-me`) or a guessable secret would let anyone sign any user id and be that person.
 * Checked here, where every signature is verified, so no caller can forget it; the site
 * directory logs such a site once (sites/index.ts).
 */
export const MIN_IDENTITY_SECRET_CHARS = 16;

/**
 * Whether `signature` is the valid HMAC-SHA256 of `userId` under `secret` (constant-time).
 * A secret under MIN_IDENTITY_SECRET_CHARS verifies nothing.
 */
export async function verifyUserId(
  secret: string,
  userId: string,
  signature: string | undefined,
): Promise<boolean> {
  if (signature === undefined || signature.length !== 64 || secret.length < MIN_IDENTITY_SECRET_CHARS)
    return false;
  const expected = await hmacHex(secret, userId);
  return timingSafeEqualText(expected, signature.toLowerCase());
}

/** The user id a person key names (`user:<id>`); undefined for a browser's (`anon:<id>`). */
export function userIdOf(personKey: PersonKey): string | undefined {
  return personKey.startsWith('user:') ? personKey.slice('user:'.length) : undefined;
}

/** Parses `anon:<id>` / `user:<id>`; undefined for anything else. */
export function parsePersonKey(text: string): PersonKey | undefined {
  if (text.length > 200) return undefined;
  if (/^anon:.{1,128}$/s.test(text) || /^user:.{1,128}$/s.test(text)) return text as PersonKey;
  return undefined;
}
