/**
 * Ids: ULIDs for events, visitors and sessions. Time-ordered, so the offline store
 * (keyed by event id) replays events in the order they happened; monotonic within a
 * page, so two events in the same millisecond still sort in call order. A dozen lines
 * here instead of the `ulid` package keep ~900 B (gzip) of error classes out of the tag.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
/** The 80 random bits of the last id. */
let lastRandom = 0n;

/** A new ULID (26 Crockford base32 characters: 10 of time, 16 of randomness). */
export function ulid(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    lastRandom = 0n;
    for (const byte of crypto.getRandomValues(new Uint8Array(10)))
      lastRandom = lastRandom * 256n + BigInt(byte);
  } else {
    // Same millisecond (or a clock step back): the next random value, so ids stay ordered.
    lastRandom++;
  }
  // 48 bits of time then 80 of randomness, in base 32 (0-9a-v) mapped to Crockford's digits.
  return (BigInt(lastTime) * 2n ** 80n + lastRandom)
    .toString(32)
    .padStart(26, '0')
    .replace(/./g, (digit) => CROCKFORD[parseInt(digit, 32)] ?? '');
}
