/**
 * Ids: ULIDs for events, visitors and sessions. Time-ordered, so the offline store
 * (keyed by event id) replays events in the order they happened; monotonic within a
 * page, so two events in the same millisecond still sort in call order. A dozen lines
 * here instead of the `ulid` package keep ~900 B (gzip) of error classes out of the tag.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
/**
 * The id's 26 digits, each the low 5 bits of a byte: 10 of time (most significant first),
 * then 16 random ones, kept to be incremented for the next id in the same millisecond.
 */
const digits = new Uint8Array(26);

/** A new ULID (26 Crockford base32 characters: 10 of time, 16 of randomness). */
export function ulid(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    crypto.getRandomValues(digits);
    // A byte keeps the integer part of what it is given: time / 32^k % 32 is digit k exactly.
    for (let i = 10; i--; now /= 32) digits[i] = now % 32;
  }
  // Same millisecond (or a clock step back): increment the random part so ids stay ordered
  // (a digit that wraps from 31 to 0 carries into the one before it).
  else for (let i = 26; i-- > 10 && !(++(digits[i] as number) & 31); );
  let id = '';
  for (const digit of digits) id += CROCKFORD[digit & 31];
  return id;
}
