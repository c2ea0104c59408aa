/**
 * The EVENTS queue producer: sends messages with `sendBatch`, split so that one call
 * carries at most 100 messages and stays under 256 KB, the Queues limits.
 */
import {
  type CustomerAction,
  type Enrichment,
  type EventsItem,
  type EventsMessage,
  MAX_EVENTS_PER_MESSAGE,
  type Purpose,
  type QueueMessage,
} from '@attune/shared-schema';

export const QUEUE_BATCH_MESSAGES = 100;
/** 256 KB per sendBatch, minus headroom for per-message overhead the platform adds. */
export const QUEUE_BATCH_BYTES = 256 * 1024 - 8 * 1024;
const PER_MESSAGE_OVERHEAD = 64;

const encoder = new TextEncoder();
// JSON text escapes control characters, so printable ASCII is all an ASCII message holds.
const NON_ASCII = /[^ -~]/;

/**
 * JSON bytes of one EventsMessage at most. A queue message may hold 128 KB as the
 * platform serializes it, which is not JSON: half of it leaves room for encodings that
 * take more bytes than JSON text (a number such as 0.5 is 3 bytes of JSON, 9 serialized).
 * One event is at most LIMITS.maxEventBytes (32 KB), so any event fits.
 */
export const EVENTS_MESSAGE_BYTES = 64 * 1024;

/** JSON bytes of a text: ASCII (the usual case) is one byte per character, so only other text is encoded. */
function jsonBytes(json: string): number {
  return NON_ASCII.test(json) ? encoder.encode(json).byteLength : json.length;
}

/** Sizes already measured while a message was built, so chunking does not serialize it again. */
const knownBytes = new WeakMap<QueueMessage, number>();

/** One accepted event to forward, with the purposes its consent grants. */
export interface ForwardedEvent {
  event: CustomerAction;
  enrichment: Enrichment;
  purposes: Purpose[];
}

/**
 * A person's accepted events as EventsMessages: consecutive events with the same purposes
 * share a message, up to MAX_EVENTS_PER_MESSAGE events and EVENTS_MESSAGE_BYTES.
 */
export function eventsMessages(
  siteId: string,
  personId: string,
  traceparent: string | undefined,
  events: readonly ForwardedEvent[],
): EventsMessage[] {
  const out: EventsMessage[] = [];
  const envelope = (purposes: Purpose[], items: EventsItem[]): EventsMessage => {
    const m: EventsMessage = { kind: 'events', siteId, personId, purposes, events: items };
    if (traceparent !== undefined) m.traceparent = traceparent;
    return m;
  };
  // Each message is serialized once, whole (chunking reuses its size); only one over the
  // byte budget (rare: events of tens of KB) is split in halves and measured again.
  const add = (purposes: Purpose[], items: EventsItem[]): void => {
    const message = envelope(purposes, items);
    const bytes = jsonBytes(JSON.stringify(message));
    if (bytes <= EVENTS_MESSAGE_BYTES || items.length === 1) {
      knownBytes.set(message, bytes);
      out.push(message);
      return;
    }
    const half = Math.ceil(items.length / 2);
    add(purposes, items.slice(0, half));
    add([...purposes], items.slice(half));
  };
  let items: EventsItem[] = [];
  let purposes: Purpose[] | undefined;
  let key = '';
  for (const forwarded of events) {
    const next = forwarded.purposes.join(',');
    if (purposes !== undefined && (next !== key || items.length >= MAX_EVENTS_PER_MESSAGE)) {
      add(purposes, items);
      items = [];
    }
    if (items.length === 0) {
      purposes = forwarded.purposes;
      key = next;
    }
    items.push({ event: forwarded.event, enrichment: forwarded.enrichment });
  }
  if (purposes !== undefined && items.length > 0) add(purposes, items);
  return out;
}

/** Splits messages into sendBatch-sized chunks, keeping their order. */
export function chunkMessages(messages: readonly QueueMessage[]): QueueMessage[][] {
  const chunks: QueueMessage[][] = [];
  let current: QueueMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = (knownBytes.get(message) ?? jsonBytes(JSON.stringify(message))) + PER_MESSAGE_OVERHEAD;
    if (current.length > 0 && (current.length >= QUEUE_BATCH_MESSAGES || bytes + size > QUEUE_BATCH_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Sends messages to a queue in order, one sendBatch per chunk. */
export async function sendMessages(queue: Queue, messages: readonly QueueMessage[]): Promise<void> {
  for (const chunk of chunkMessages(messages)) {
    await queue.sendBatch(chunk.map((body) => ({ body })));
  }
}

/**
 * How long the first request's messages wait for those of concurrent requests before
 * one shared send. Messages go after the response anyway (waitUntil); each sendBatch has
 * a fixed cost, so under load one call carries many requests' messages instead of one each.
 */
export const COALESCE_MS = 50;

interface Pending {
  messages: QueueMessage[];
  done: Promise<void>;
  start: () => void;
}

/** Per queue binding: messages waiting for the next shared send, and the send before it. */
const pendingByQueue = new WeakMap<Queue, { pending?: Pending; previous: Promise<void> }>();

/**
 * Hands messages to the isolate's next shared send to `queue` and resolves once they were
 * sent (or `send` gave up). Order is kept: messages of earlier calls are sent first, and
 * one shared send starts only after the previous one finished. `send` does the sending
 * (and its retries); it must not reject.
 */
export function sendCoalesced(
  queue: Queue,
  messages: readonly QueueMessage[],
  send: (messages: QueueMessage[]) => Promise<void>,
): Promise<void> {
  let slot = pendingByQueue.get(queue);
  if (slot === undefined) {
    slot = { previous: Promise.resolve() };
    pendingByQueue.set(queue, slot);
  }
  const current = slot;
  let pending = current.pending;
  if (pending === undefined) {
    let release: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    const created: Pending = { messages: [], done: Promise.resolve(), start: release };
    const after = current.previous;
    created.done = Promise.all([started, after]).then(() => {
      if (current.pending === created) current.pending = undefined;
      return send(created.messages);
    });
    current.previous = created.done;
    current.pending = created;
    pending = created;
    setTimeout(release, COALESCE_MS);
  }
  pending.messages.push(...messages);
  // A full batch need not wait for more.
  if (pending.messages.length >= QUEUE_BATCH_MESSAGES) {
    current.pending = undefined;
    pending.start();
  }
  return pending.done;
}
