/**
 * Ids: ULIDs for events, visitors and sessions. Time-ordered, so the offline store
 * (keyed by event id) replays events in the order they happened; monotonic within a
 * page, so two events in the same millisecond still sort in call order. A dozen lines
 * here instead of the `ulid` package keep ~900 B (gzip) of error classes out of the tag.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
/** The random part: bytes 10 to 25, whose low 5 bits are its 16 base32 digits (0 to 9 unused). */
const random = new Uint8Array(26);

/** A new ULID (26 Crockford base32 characters: 10 of time, 16 of randomness). */
export function ulid(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    crypto.getRandomValues(random);
  }
  // Same millisecond (or a clock step back): increment the random part so ids stay ordered
  // (a digit that wraps from 31 to 0 carries into the one before it).
  else for (let i = 26; i-- > 10 && !(++(random[i] as number) & 31); );
  let id = '';
  // 10 digits of time (dividing by powers of two is exact; `| 0` drops the fraction below the
  // digit), then the 16 random ones.
  for (let i = 0; i < 26; i++)
    id += CROCKFORD[i < 10 ? ((lastTime / 32 ** (9 - i)) % 32) | 0 : (random[i] as number) & 31];
  return id;
}
