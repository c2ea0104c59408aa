/**
 * Queued events: the outbox's entries. The tracker bounds its queues (the pre-consent waiting
 * room, the outbox of unsent events): when one is full the oldest event is dropped and counted,
 * so a page that runs for days offline keeps its newest events and can report how many it lost.
 */

/** An event ready for the wire: its id and its JSON, serialized once, and that JSON's UTF-8 bytes. */
export interface QueuedEvent {
  id: string;
  json: string;
  bytes: number;
  /** Set while a request carrying it is in flight (so no other request sends it too). */
  _sending?: boolean;
  /** Set once it is written to IndexedDB. */
  _stored?: boolean;
}
