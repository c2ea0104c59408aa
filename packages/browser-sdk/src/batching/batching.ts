/**
 * Batching: how many queued events go in one request, and the collect body for them.
 * A batch is bounded by count and by UTF-8 bytes (LIMITS.browserBatchBytes, well under
 * the 64 KB a keepalive request or beacon may carry); the body is built from each
 * event's cached JSON so nothing is serialized twice.
 */
import { LIMITS } from '@attune/shared-schema/constants';
import type { QueuedEvent } from '../queue/queue.ts';

/**
 * UTF-8 bytes of a string: its length when it is ASCII, the common case, without encoding it
 * (a Blob per event would cost Chromium a trip to its blob registry: ~30× slower track()).
 */
export const utf8Bytes = (text: string): number =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range starts at \x00.
  /[^\x00-\x7f]/.test(text) ? new Blob([text]).size : text.length;

/** The collect body `{ writeKey, sentAt, batch }` for events already serialized, sent now. */
export const collectBody = (writeKey: string, events: readonly QueuedEvent[]): string =>
  `{"writeKey":${JSON.stringify(writeKey)},"sentAt":"${new Date().toISOString()}","batch":[${events.map((e) => e.json).join(',')}]}`;

/**
 * How many events from the head of `events` fit in one batch of at most `maxCount`
 * events and LIMITS.browserBatchBytes body bytes. Always at least one when there is one
 * (a single event is at most LIMITS.maxEventBytes, below the batch limit).
 */
export function batchSize(
  events: readonly QueuedEvent[],
  writeKey: string,
  maxCount: number = LIMITS.maxBatchEvents,
): number {
  // The envelope: a body with no events.
  let bytes = utf8Bytes(collectBody(writeKey, []));
  let count = 0;
  for (const event of events) {
    bytes += event.bytes + (count ? 1 : 0);
    if (count >= maxCount || (count && bytes > LIMITS.browserBatchBytes)) break;
    count++;
  }
  return count;
}
