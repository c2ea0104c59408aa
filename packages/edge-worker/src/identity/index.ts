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

/** Whether `signature` is the valid HMAC-SHA256 of `userId` under `secret` (constant-time). */
export async function verifyUserId(
  secret: string,
  userId: string,
  signature: string | undefined,
): Promise<boolean> {
  if (signature === undefined || signature.length !== 64 || secret === '') return false;
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
