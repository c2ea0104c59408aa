/** ULIDs for events the edge itself makes (interest.shifted): time-ordered, 26 characters. */
import { ulidOf } from '@attune/shared-schema';

/** A new ULID for a time (milliseconds since the epoch), clamped to the 48 bits a ULID holds. */
export function newUlid(timeMs: number = Date.now()): string {
  return ulidOf(
    Math.max(0, Math.min(Math.floor(timeMs), 2 ** 48 - 1)),
    crypto.getRandomValues(new Uint8Array(16)),
  );
}
