/**
 * The Worker's queue() handler: the EVENTS consumer that syncs to Directus (see
 * consumer.ts), with co-visitation counts handed to the decide capability, and the
 * dead-letter queue's consumer that keeps what the sync could not write (dead-letters.ts).
 */
import { applyCovisits } from '../decide/covisitation.ts';
import { syncBatch } from './consumer.ts';
import { isDeadLetterQueue, storeDeadLetters } from './dead-letters.ts';

export type { DeadLetter, SyncReport } from './consumer.ts';
export { syncBatch } from './consumer.ts';

/** Consumes one batch of the EVENTS queue, or of its dead-letter queue. */
export async function queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (isDeadLetterQueue(batch.queue)) await storeDeadLetters(batch, env);
  else await syncBatch(batch, env, { applyCovisits });
}
