/**
 * The Worker's queue() handler: the EVENTS consumer that syncs to Directus (see
 * consumer.ts), with co-visitation counts handed to the decide capability.
 */
import { applyCovisits } from '../decide/covisitation.ts';
import { syncBatch } from './consumer.ts';

export type { DeadLetter, SyncReport } from './consumer.ts';
export { syncBatch } from './consumer.ts';

/** Consumes one batch of the EVENTS queue. */
export async function queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await syncBatch(batch, env, { applyCovisits });
}
