/**
 * The EVENTS queue producer: sends messages with `sendBatch`, split so that one call
 * carries at most 100 messages and stays under 256 KB, the Queues limits.
 */
import type { QueueMessage } from '@attune/shared-schema';

export const QUEUE_BATCH_MESSAGES = 100;
/** 256 KB per sendBatch, minus headroom for per-message overhead the platform adds. */
export const QUEUE_BATCH_BYTES = 256 * 1024 - 8 * 1024;
const PER_MESSAGE_OVERHEAD = 64;

const encoder = new TextEncoder();

/** Splits messages into sendBatch-sized chunks, keeping their order. */
export function chunkMessages(messages: readonly QueueMessage[]): QueueMessage[][] {
  const chunks: QueueMessage[][] = [];
  let current: QueueMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = encoder.encode(JSON.stringify(message)).byteLength + PER_MESSAGE_OVERHEAD;
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
