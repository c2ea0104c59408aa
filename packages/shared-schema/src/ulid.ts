/**
 * The ULID encoding every id Attune derives or draws on the server side shares: the edge's
 * own events (random digits), the order catch-up's events (digits of a SHA-256, as the
 * Directus Flow makes them) and upcast Segment messages (digits of a hash of the messageId).
 * Directus's Flow keeps its own copy: its script sandbox imports nothing.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The ULID of `timeMs` and sixteen `digits`: ten Crockford base-32 characters of the time,
 * most significant first, then one character per digit (its low five bits). The time is
 * encoded as given: a caller that must stay within 48 bits clamps it first, and the order
 * catch-up must not, because the Flow whose ids it makes again does not.
 */
export function ulidOf(timeMs: number, digits: Iterable<number>): string {
  let time = '';
  let t = timeMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  let rest = '';
  for (const digit of digits) rest += CROCKFORD.charAt(digit & 31);
  return time + rest;
}
