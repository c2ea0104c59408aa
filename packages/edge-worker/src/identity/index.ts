/**
 * Verified identity: a `userId` counts only with a valid HMAC-SHA256 signature made by
 * the site's backend with its identity secret. Resolves the person a request belongs to,
 * following the anonymous → person alias that a verified identify leaves behind.
 */
import { profileStub } from '../profile/client.ts';
import type { PersonKey } from '../profile/types.ts';
import type { Site } from '../sites/index.ts';
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

export interface PersonInput {
  anonymousId?: string;
  userId?: string;
  userIdSignature?: string;
}

/**
 * The person a request belongs to. A correctly signed userId wins; otherwise the
 * anonymous id, followed to the person it was merged into by a verified identify.
 * Unsigned or wrongly signed user ids are ignored (never trusted).
 */
export async function resolvePerson(
  env: Env,
  site: Site,
  input: PersonInput,
): Promise<{ personKey: PersonKey; verified: boolean }> {
  if (input.userId !== undefined && input.userId.length > 0 && input.userId.length <= 128) {
    if (await verifyUserId(site.identitySecret, input.userId, input.userIdSignature)) {
      return { personKey: `user:${input.userId}`, verified: true };
    }
  }
  const anonymousId = input.anonymousId;
  if (anonymousId === undefined || anonymousId.length === 0 || anonymousId.length > 128) {
    // No person at all: the empty anonymous key, whose profile is always empty.
    return { personKey: 'anon:', verified: false };
  }
  const anonKey: PersonKey = `anon:${anonymousId}`;
  const alias = await profileStub(env, site.id, anonKey).aliasOf();
  return alias !== null ? { personKey: alias, verified: false } : { personKey: anonKey, verified: false };
}
