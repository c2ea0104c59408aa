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

/** Thrown by sendMessages: how many of the messages were not sent (the ones before them were). */
export class QueueSendError extends Error {
  override name = 'QueueSendError';
  constructor(
    readonly unsent: number,
    cause: unknown,
  ) {
    super(`${unsent} queue messages not sent`, { cause });
  }
}

/**
 * Sends messages to a queue in order, one sendBatch per chunk; a chunk that fails is tried
 * once more on its own. A retry never sends the chunks before it again: sent twice, a
 * `covisits` message arrives under a new message id and its pairs count twice. Rejects with
 * a QueueSendError once a chunk fails twice.
 */
export async function sendMessages(queue: Queue, messages: readonly QueueMessage[]): Promise<void> {
  let sent = 0;
  for (const chunk of chunkMessages(messages)) {
    const batch = chunk.map((body) => ({ body }));
    try {
      await queue.sendBatch(batch).catch(() => queue.sendBatch(batch));
    } catch (cause) {
      throw new QueueSendError(messages.length - sent, cause);
    }
    sent += chunk.length;
  }
}

/**
 * How long the first request's messages wait for those of concurrent requests before
 * one shared send. Messages go after the response anyway (waitUntil); each sendBatch has
 * a fixed cost, so under load one call carries many requests' messages instead of one each.
 */
export const COALESCE_MS = 50;

/** Per queue binding: the batch a leading request holds open, which later requests join. */
const openBatches = new WeakMap<Queue, QueueMessage[]>();

/**
 * Shares one send among the overlapping requests of an isolate without sharing a promise
 * between them. The first request (the leader) opens a batch, waits COALESCE_MS on its
 * own timer and sends the batch from its own context; requests that arrive meanwhile
 * only add their messages to it. Returns the leader's send, for its waitUntil; a request
 * that joined an open batch gets undefined: it has nothing to wait for.
 * Why no promise is shared: workerd ties a promise to the request that created it. A
 * request waiting on a promise only another request can settle has no work of its own
 * left, so workerd cancels it as hung; and continuations of a request that has ended are
 * dropped. Waiting for another request's send lost whole batches that way.
 * Messages keep their order within a batch; consecutive batches may overlap in flight,
 * which is fine, because the queue does not keep order anyway (the consumer does not
 * rely on it). `send` does the sending and its retries; it must not reject.
 */
export function sendShared(
  queue: Queue,
  messages: readonly QueueMessage[],
  send: (messages: QueueMessage[]) => Promise<void>,
): Promise<void> | undefined {
  const open = openBatches.get(queue);
  if (open !== undefined) {
    open.push(...messages);
    return undefined;
  }
  const batch = [...messages];
  openBatches.set(queue, batch);
  return new Promise<void>((resolve) => setTimeout(resolve, COALESCE_MS)).then(() => {
    openBatches.delete(queue);
    return send(batch);
  });
}
