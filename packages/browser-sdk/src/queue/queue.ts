/**
 * Bounded queues: the pre-consent waiting room and the outbox of unsent events. When a
 * queue is full the oldest event is dropped and counted, so a page that runs for days
 * offline keeps its newest events and can report how many it lost.
 */

/** An event ready for the wire: its id and its JSON, serialized once. */
export interface QueuedEvent {
  id: string;
  json: string;
}

export interface BoundedQueue<T> {
  items: T[];
  limit: number;
  /** Events dropped because the queue was full. */
  dropped: number;
}

export const boundedQueue = <T>(limit: number): BoundedQueue<T> => ({ items: [], limit, dropped: 0 });

/** Appends `item`; returns the items dropped to stay within the limit (oldest first). */
export function enqueue<T>(queue: BoundedQueue<T>, item: T): T[] {
  queue.items.push(item);
  const over = queue.items.splice(0, Math.max(0, queue.items.length - queue.limit));
  queue.dropped += over.length;
  return over;
}
