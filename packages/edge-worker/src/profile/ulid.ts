/** ULIDs for events the edge itself makes (interest.shifted): time-ordered, 26 characters. */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A new ULID for a time (milliseconds since the epoch). */
export function newUlid(timeMs: number = Date.now()): string {
  let out = '';
  let t = Math.max(0, Math.min(Math.floor(timeMs), 2 ** 48 - 1));
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD.charAt(t % 32) + out;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  for (const byte of random) out += CROCKFORD.charAt(byte & 31);
  return out;
}
