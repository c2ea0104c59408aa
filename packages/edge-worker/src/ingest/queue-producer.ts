/**
 * The EVENTS queue producer: sends messages with `sendBatch`, split so that one call
 * carries at most 100 messages and stays under 256 KB, the Queues limits, and fits
 * profile snapshots under the limit of one message (128 KB).
 */
import {
  type CustomerAction,
  type Enrichment,
  type EventsItem,
  type EventsMessage,
  jsonEntryBytes,
  MAX_EVENTS_PER_MESSAGE,
  type ProfileMessage,
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
 * JSON bytes of one queue message at most. A queue message may hold 128 KB as the
 * platform serializes it, which is not JSON: half of it leaves room for encodings that
 * take more bytes than JSON text (a number such as 0.5 is 3 bytes of JSON, 9 serialized).
 */
export const QUEUE_MESSAGE_BYTES = 64 * 1024;

/** JSON bytes of one EventsMessage at most. One event is at most LIMITS.maxEventBytes (32 KB), so any event fits. */
export const EVENTS_MESSAGE_BYTES = QUEUE_MESSAGE_BYTES;

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

/**
 * A profile snapshot that fits QUEUE_MESSAGE_BYTES: the message itself when it does, else a
 * copy without the largest entries of its free-form maps (traits and counters, largest
 * first, as many as it takes), which the consumer writes like any snapshot; `omitted` says
 * how many entries were left out. Why trim rather than drop it: the rest of the snapshot
 * (browsers, consent, interests, segments) is what Directus needs most, and one person's
 * oversized traits must not cost it. A snapshot still over without any of them goes as
 * trimmed as it gets; sendMessages sends it on its own (see chunkMessages).
 */
export function fitProfileMessage(message: ProfileMessage): { message: ProfileMessage; omitted: number } {
  const bytes = knownBytes.get(message) ?? jsonBytes(JSON.stringify(message));
  knownBytes.set(message, bytes);
  if (bytes <= QUEUE_MESSAGE_BYTES) return { message, omitted: 0 };
  const { traits, counters } = message.profile;
  // Each entry's share of the JSON: "key":value and a comma.
  const entries = [
    ...Object.entries(traits).map(([key, value]) => ({ map: 'traits' as const, key, value })),
    ...Object.entries(counters).map(([key, value]) => ({ map: 'counters' as const, key, value })),
  ]
    .map((entry) => ({ ...entry, bytes: jsonEntryBytes(entry.key, entry.value) }))
    .sort((x, y) => y.bytes - x.bytes);
  const omit = { traits: new Set<string>(), counters: new Set<string>() };
  let trimmed = message;
  let excess = bytes - QUEUE_MESSAGE_BYTES;
  let measured = true;
  for (const entry of entries) {
    omit[entry.map].add(entry.key);
    excess -= entry.bytes;
    measured = false;
    if (excess > 0) continue;
    // Measured once the estimate says it fits (a map left empty loses one comma less).
    trimmed = withoutEntries(message, omit);
    excess = jsonBytes(JSON.stringify(trimmed)) - QUEUE_MESSAGE_BYTES;
    measured = true;
    if (excess <= 0) break;
  }
  if (!measured) {
    trimmed = withoutEntries(message, omit);
    excess = jsonBytes(JSON.stringify(trimmed)) - QUEUE_MESSAGE_BYTES;
  }
  knownBytes.set(trimmed, excess + QUEUE_MESSAGE_BYTES);
  return { message: trimmed, omitted: omit.traits.size + omit.counters.size };
}

/** A copy of a profile snapshot without the named traits and counters. */
function withoutEntries(
  message: ProfileMessage,
  omit: { traits: ReadonlySet<string>; counters: ReadonlySet<string> },
): ProfileMessage {
  const keep = <T>(map: Record<string, T>, omitted: ReadonlySet<string>): Record<string, T> => {
    const out: Record<string, T> = {};
    for (const [key, value] of Object.entries(map)) {
      // defineProperty keeps a `__proto__` trait as data instead of touching the prototype.
      if (!omitted.has(key))
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return {
    ...message,
    profile: {
      ...message.profile,
      traits: keep(message.profile.traits, omit.traits),
      counters: keep(message.profile.counters, omit.counters),
    },
  };
}

/**
 * Splits messages into sendBatch-sized chunks, keeping their order. A message over
 * QUEUE_MESSAGE_BYTES gets a chunk of its own: the queue may refuse it, and a refused
 * sendBatch loses every message in it, which would be other people's too (the sends of
 * overlapping requests are shared, see sendShared).
 */
export function chunkMessages(messages: readonly QueueMessage[]): QueueMessage[][] {
  const chunks: QueueMessage[][] = [];
  let current: QueueMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const json = knownBytes.get(message) ?? jsonBytes(JSON.stringify(message));
    const size = json + PER_MESSAGE_OVERHEAD;
    const alone = json > QUEUE_MESSAGE_BYTES;
    if (
      current.length > 0 &&
      (alone || current.length >= QUEUE_BATCH_MESSAGES || bytes + size > QUEUE_BATCH_BYTES)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    if (alone) {
      chunks.push([message]);
      continue;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Thrown by sendMessages: the messages that were not sent, in order (all the others were). */
export class QueueSendError extends Error {
  override name = 'QueueSendError';
  constructor(
    readonly unsent: QueueMessage[],
    cause: unknown,
  ) {
    super(`${unsent.length} queue messages not sent`, { cause });
  }
}

/**
 * How long sendMessages waits on the queue in all, every call and retry together, before it
 * takes what it has not sent as refused. Why a bound: the ingest sends after the response,
 * in waitUntil, which the runtime cancels 30 s after the response, so a sendBatch that never
 * settled (the queue's service stuck) took its messages with it, neither sent nor parked nor
 * counted; the rest of those 30 s is for parking them. The parked resend runs in its
 * person's turn, which a stuck call held, and every batch of theirs waited behind it. A call
 * given up on may still land: then the parked copy goes too, which the sync writes once (by
 * event id and snapshot version); only a `covisits` message's pairs would count twice.
 */
export const QUEUE_SEND_BUDGET_MS = 10_000;

/** Thrown for a sendBatch that did not settle within QUEUE_SEND_BUDGET_MS (see there). */
export class QueueTimeoutError extends Error {
  override name = 'QueueTimeoutError';
}

/**
 * A queue call (send, sendBatch) given up on after `budgetMs` (QUEUE_SEND_BUDGET_MS): rejects
 * with a QueueTimeoutError if it has not settled by then. What it sent may still reach the
 * queue later, so a caller treats such a call as refused whose messages may go twice.
 * Every queue call is bounded so: a stuck one held the admin's resend request open
 * indefinitely, and a consumer's dead-letter send held its whole batch until the runtime
 * ended the invocation and redelivered it.
 */
export async function settledWithin<T>(call: Promise<T>, budgetMs = QUEUE_SEND_BUDGET_MS): Promise<T> {
  if (budgetMs <= 0) throw new QueueTimeoutError('queue send budget spent');
  // Given up on, its late failure is nobody's to handle.
  call.catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new QueueTimeoutError(`queue send not settled in ${budgetMs} ms`)),
      budgetMs,
    );
  });
  try {
    return await Promise.race([call, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One sendBatch, given up on (rejected) at `deadline`; none is made once it has passed. */
async function sendBatchBy(
  queue: Queue,
  batch: MessageSendRequest<QueueMessage>[],
  deadline: number,
): Promise<void> {
  const left = deadline - Date.now();
  if (left <= 0) throw new QueueTimeoutError('queue send budget spent');
  await settledWithin(queue.sendBatch(batch), left);
}

/**
 * Sends messages to a queue in order, one sendBatch per chunk; a chunk that fails is tried
 * once more on its own. A retry never sends the chunks before it again: sent twice, a
 * `covisits` message arrives under a new message id and its pairs count twice. A chunk
 * that fails twice does not stop the ones after it (they are other people's messages,
 * and the chunk may have failed for a reason of its own, such as a message too large).
 * All of it within `budgetMs` (QUEUE_SEND_BUDGET_MS): what is not sent by then is unsent.
 * Rejects with a QueueSendError holding the unsent messages once every chunk was tried.
 */
export async function sendMessages(
  queue: Queue,
  messages: readonly QueueMessage[],
  budgetMs = QUEUE_SEND_BUDGET_MS,
): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const unsent: QueueMessage[] = [];
  let firstCause: unknown;
  for (const chunk of chunkMessages(messages)) {
    const batch = chunk.map((body) => ({ body }));
    try {
      await sendBatchBy(queue, batch, deadline).catch(() => sendBatchBy(queue, batch, deadline));
    } catch (cause) {
      if (unsent.length === 0) firstCause = cause;
      unsent.push(...chunk);
    }
  }
  if (unsent.length > 0) throw new QueueSendError(unsent, firstCause);
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
