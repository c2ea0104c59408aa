/**
 * Verified identity: a `userId` counts only with a valid HMAC-SHA256 signature made by
 * the site's backend with its identity secret; person keys (`anon:<id>`, `user:<id>`).
 */
import type { PersonKey } from '../profile/types.ts';
import { hmacHex, sha256Hex, timingSafeEqualText } from './crypto.ts';

export { profileObjectName, profileStub } from '../profile/client.ts';
export { hmacHex, timingSafeEqualText } from './crypto.ts';

/** The signature a site's backend computes for a user id: HMAC-SHA256(identitySecret, userId), hex. */
export function signUserId(secret: string, userId: string): Promise<string> {
  return hmacHex(secret, userId);
}

/**
 * The expiring signature a site's backend computes for a user id, valid until `expiry`
 * (a Unix time in seconds): `<expiry>.<hex>`, the hex being HMAC-SHA256(identitySecret,
 * `<expiry>.<userId>`).
 */
export async function signUserIdUntil(secret: string, userId: string, expiry: number): Promise<string> {
  return `${expiry}.${await hmacHex(secret, `${expiry}.${userId}`)}`;
}

/**
 * The browser-bound signature a site's backend computes for a user id signing in on the
 * browser `anonymousId`, valid until `expiry` (a Unix time in seconds): `<expiry>.<hex>`,
 * the hex being HMAC-SHA256(identitySecret, `<expiry>.<userId>.<SHA-256 hex of
 * anonymousId>`). The anonymous id goes in as its digest, a fixed 64 hex digits, because
 * both ids may hold dots: signing them as they are, the signature for user `bob` on a
 * browser the signer was told is `smith.b1` would also be one for user `bob.smith` on `b1`.
 */
export async function signUserIdForBrowser(
  secret: string,
  userId: string,
  anonymousId: string,
  expiry: number,
): Promise<string> {
  return `${expiry}.${await hmacHex(secret, await boundMessage(expiry, userId, anonymousId))}`;
}

/** What a browser-bound signature covers (see signUserIdForBrowser). */
async function boundMessage(expiry: number | string, userId: string, anonymousId: string): Promise<string> {
  return `${expiry}.${userId}.${await sha256Hex(anonymousId)}`;
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
export function verifyUserId(
  secret: string,
  userId: string,
  signature: string | undefined,
): Promise<boolean> {
  return signs(secret, userId, signature);
}

/** Whether `hex` is the HMAC-SHA256 of `message` under `secret` (constant-time; a short secret signs nothing). */
async function signs(secret: string, message: string, hex: string | undefined): Promise<boolean> {
  if (hex === undefined || hex.length !== 64 || secret.length < MIN_IDENTITY_SECRET_CHARS) return false;
  const expected = await hmacHex(secret, message);
  return timingSafeEqualText(expected, hex.toLowerCase());
}

/**
 * Which signatures a site takes (its `settings.identity.signatures`):
 * - `plain` (the default): HMAC-SHA256(identitySecret, userId), 64 hex digits. It never
 *   expires: one captured (a shared computer, a leaked log) names that person for good.
 * - `expiring`: `<expiry>.<64 hex>`, the HMAC-SHA256 of `<expiry>.<userId>`, where
 *   `<expiry>` is a Unix time in seconds. After it the signature no longer names anyone.
 * - `bound`: expiring, and bound to the browser: `<expiry>.<64 hex>`, the HMAC-SHA256 of
 *   `<expiry>.<userId>.<SHA-256 hex of anonymousId>` (signUserIdForBrowser). It names the
 *   person only on the event or decision of that anonymousId, so a signature copied out of
 *   a page or a log signs in no other browser (the backend must still sign only for the
 *   browser signing in; README, Security, says what this does not stop).
 * A site takes one form only: were both plain and expiring taken, the plain signature a
 * site made for a user id that reads `<digits>.<someone>` (one an attacker registered)
 * would be a valid expiring signature for that someone. The older forms on a site that
 * moved on are only ever `expired` (see checkUserIdSignature).
 */
export type SignatureForm = 'plain' | 'expiring' | 'bound';

/**
 * What a signature says about a user id:
 * - `valid`: it names them;
 * - `expired`: the site made it, but it no longer names anyone (past its expiry, or one of
 *   an older form than the site takes, made before the site moved on);
 * - `invalid`: refused, with `message` saying what to fix.
 */
export type SignatureCheck =
  | { verdict: 'valid' }
  | { verdict: 'expired' }
  | { verdict: 'invalid'; message: string };

const EXPIRING = /^(\d{1,12})\.([\da-f]{64})$/i;

/** What a site taking `form` signatures expects, for the error that refuses one. */
const EXPECTED_FORM: Record<SignatureForm, string> = {
  plain:
    'the HMAC-SHA256 of the userId with the site identity secret, hex (this site takes plain signatures; expiring ones are turned on by its settings.identity.signatures)',
  expiring:
    '"<expiry>.<hex>": the HMAC-SHA256 of "<expiry>.<userId>" with the site identity secret, <expiry> a Unix time in seconds (this site takes expiring signatures only)',
  bound:
    '"<expiry>.<hex>": the HMAC-SHA256 of "<expiry>.<userId>.<SHA-256 hex of anonymousId>" with the site identity secret, <expiry> a Unix time in seconds and anonymousId the browser\'s own, the one this event carries (the SDK\'s attune.anonymousId(), or the attune_aid cookie behind the edge proxy) (this site takes browser-bound signatures only)',
};

/**
 * Checks `signature` of `userId` for a site taking `form` signatures, at `now` (epoch ms).
 * `anonymousId` is the browser the event or decision is for: a bound signature must cover
 * it (without one, a bound signature names no one).
 */
export async function checkUserIdSignature(
  site: { identitySecret: string; signatures: SignatureForm },
  userId: string,
  signature: string | undefined,
  now: number = Date.now(),
  anonymousId?: string,
): Promise<SignatureCheck> {
  const expectedForm = EXPECTED_FORM[site.signatures];
  if (signature === undefined)
    return {
      verdict: 'invalid',
      message: `userId needs userIdSignature: ${expectedForm}, made by your backend`,
    };
  const mismatch: SignatureCheck = {
    verdict: 'invalid',
    message:
      site.signatures === 'bound'
        ? `userIdSignature does not match userId and this event's anonymousId; expected ${expectedForm}`
        : `userIdSignature does not match userId; expected ${expectedForm}`,
  };
  const expiring = EXPIRING.exec(signature);
  if (expiring === null) {
    // A plain signature on a site taking a later form is a credential from before the move:
    // it proves the site once signed this id, so it is taken as expired (the ProfileDO lets
    // its event reach that person only through a browser linked to them), never as valid.
    if (!(await signs(site.identitySecret, userId, signature))) return mismatch;
    return { verdict: site.signatures === 'plain' ? 'valid' : 'expired' };
  }
  // An expiring signature on a plain site is refused, whatever it signs (see SignatureForm).
  if (site.signatures === 'plain') return mismatch;
  const [, expiry = '', hex] = expiring;
  const unexpired = Number(expiry) * 1000 > now;
  if (site.signatures === 'bound') {
    if (
      anonymousId !== undefined &&
      (await signs(site.identitySecret, await boundMessage(expiry, userId, anonymousId), hex))
    )
      return unexpired ? { verdict: 'valid' } : { verdict: 'expired' };
    // The unbound form, from before the site bound its signatures, is expired like a plain
    // one: it reaches the person only through a browser already linked to them, so it
    // cannot sign a browser in (which is what binding closes).
    return (await signs(site.identitySecret, `${expiry}.${userId}`, hex)) ? { verdict: 'expired' } : mismatch;
  }
  if (!(await signs(site.identitySecret, `${expiry}.${userId}`, hex))) return mismatch;
  return unexpired ? { verdict: 'valid' } : { verdict: 'expired' };
}

/** The user id a person key names (`user:<id>`); undefined for a browser's (`anon:<id>`). */
export function userIdOf(personKey: PersonKey): string | undefined {
  return personKey.startsWith('user:') ? personKey.slice('user:'.length) : undefined;
}

/** The browser's anonymous id a person key names (`anon:<id>`); undefined for a user's (`user:<id>`). */
export function anonymousIdOf(personKey: PersonKey): string | undefined {
  return personKey.startsWith('anon:') ? personKey.slice('anon:'.length) : undefined;
}

/** Parses `anon:<id>` / `user:<id>`; undefined for anything else. */
export function parsePersonKey(text: string): PersonKey | undefined {
  if (text.length > 200) return undefined;
  if (/^anon:.{1,128}$/s.test(text) || /^user:.{1,128}$/s.test(text)) return text as PersonKey;
  return undefined;
}
