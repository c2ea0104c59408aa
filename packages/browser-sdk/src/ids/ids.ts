/**
 * Ids: ULIDs for events, visitors and sessions. Time-ordered, so the offline store
 * (keyed by event id) replays events in the order they happened; monotonic within a
 * page, so two events in the same millisecond still sort in call order. A dozen lines
 * here instead of the `ulid` package keep ~900 B (gzip) of error classes out of the tag.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
let lastRandom = new Uint8Array(16);

/** A new ULID (26 Crockford base32 characters: 10 of time, 16 of randomness). */
export function ulid(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    lastRandom = crypto.getRandomValues(new Uint8Array(16)).map((byte) => byte & 31);
  } else {
    // Same millisecond (or a clock step back): increment the random part so ids stay ordered.
    for (let i = 15; i >= 0; i--) {
      const digit = ((lastRandom[i] ?? 0) + 1) & 31;
      lastRandom[i] = digit;
      if (digit) break;
    }
  }
  let id = '';
  for (let i = 0, time = lastTime; i < 10; i++, time = Math.floor(time / 32)) id = CROCKFORD[time % 32] + id;
  for (const digit of lastRandom) id += CROCKFORD[digit];
  return id;
}
