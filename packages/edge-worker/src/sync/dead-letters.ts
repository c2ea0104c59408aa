/**
 * The dead-letter queue's consumer: keeps each message the sync could not write in
 * Directus's `dead_letters` collection, with the reason, whom it is about and the original
 * body, so an operator can see what failed and act on it. Before, the queue held them for
 * its retention period and nothing read them.
 *
 * - Idempotent: the row's key is the DLQ message id, so a redelivery writes nothing twice.
 * - While Directus is unavailable, messages are retried with the sync's backoff.
 * - An erasure is applied again, not kept: it reaches this queue when Directus was down for
 *   the whole retry period, and the person asked to be erased (by its erasure id it counts
 *   into the proof its earlier attempts opened). Only one Directus refuses outright is kept
 *   as a letter, for an operator to act on.
 * - An erased person's other messages are dropped, not kept: they would bring back what
 *   the erasure deleted (the erasure also deletes their rows already kept).
 * - Nothing runs out of retries: this queue has no dead-letter queue of its own, so a
 *   message on its last delivery that must be retried (Directus down for days) is sent to
 *   this queue again instead, and waits another retry period. A letter already written on
 *   that delivery is deleted only once the copy is on the queue: if the queue refuses the
 *   copy, the letter stays in `dead_letters`, listed and resendable, rather than be lost.
 */
import { type ErasureMessage, QueueMessageSchema } from '@attune/shared-schema';
import {
  type DirectusClient,
  directusFromEnv,
  isPermanent,
  retryCause,
  withoutQuotedValues,
} from '../directus/client.ts';
import { settledWithin } from '../ingest/queue-producer.ts';
import { count, flushStats } from '../observability/index.ts';
import { isErased } from '../profile/client.ts';
import type { PersonKey } from '../profile/types.ts';
import { type ErasureCheck, erase, personSlot } from './consumer.ts';
import { type DeadLetterRow, deadLetterRow, PENDING_ERASURE, retryDelaySeconds } from './mapping.ts';

/** The dead-letter queue's name (wrangler.toml `dead_letter_queue`). */
export const DEAD_LETTER_QUEUE = 'attune-events-dlq';

/**
 * Whether a batch comes from a dead-letter queue: this one, or any whose name ends in `-dlq`.
 * Queue names are per account, so a second deployment in one account (staging) renames its
 * queues; its dead-letter queue taken for an events queue had every letter dead-lettered
 * again, wrapped in a new one, round and round, none ever kept.
 */
export function isDeadLetterQueue(queueName: string): boolean {
  return queueName === DEAD_LETTER_QUEUE || queueName.endsWith('-dlq');
}

/**
 * The delivery from which a retry is a send to this queue again (wrangler.toml's
 * `max_retries` for it is 100: the queue drops a message retried once more).
 */
export const LAST_DELIVERY = 100;

export interface DeadLetterReport {
  stored: number;
  /** Erasures applied again. */
  erasures: number;
  /** Their person was erased. */
  dropped: number;
  retried: number;
  /** On their last delivery and still to be retried: sent to this queue again. */
  requeued: number;
  /** Directus refused the row itself (logged without its content): lost. */
  refused: number;
}

/** `erasure`: an erasure Directus refused, kept for an operator whatever the tombstone says. */
type Item = { msg: Message<unknown>; row: DeadLetterRow; erasure?: true };

/**
 * Retries a message; `cause`: why (the first is logged); `written`: the id of the letter row
 * this delivery stored for it.
 */
type Retry = (msg: Message<unknown>, cause: unknown, written?: string) => void;

/** Stores one batch of the dead-letter queue in Directus; every message is acked or retried. */
export async function storeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  options: { directus?: DirectusClient; isErased?: ErasureCheck } = {},
): Promise<DeadLetterReport> {
  const directus = options.directus ?? directusFromEnv(env);
  const check = options.isErased ?? isErased;
  const report: DeadLetterReport = {
    stored: 0,
    erasures: 0,
    dropped: 0,
    retried: 0,
    requeued: 0,
    refused: 0,
  };
  /** On their last delivery: sent to this queue again, then `written` (their letter's row, if stored) deleted. */
  const requeue: { msg: Message<unknown>; written?: string }[] = [];
  // Why the first message was retried, for the batch's log line: a count alone does not tell
  // an operator a wrong DIRECTUS_URL or token from an outage (retryCause: no person keys).
  let cause: string | undefined;
  const retry: Retry = (msg, why, written) => {
    cause ??= retryCause(why);
    if (msg.attempts >= LAST_DELIVERY) requeue.push(written === undefined ? { msg } : { msg, written });
    else {
      msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
      report.retried++;
    }
  };

  const erased = new Map<string, Promise<boolean>>();
  const kept: Item[] = [];
  // Redeliveries about an erased person: an earlier delivery may have written their row.
  const droppedAgain: Item[] = [];
  const now = Date.now();
  for (const msg of batch.messages) {
    const row = deadLetterRow(msg, now);
    const original = QueueMessageSchema.safeParse(row.message);
    if (original.success && original.data.kind === 'erasure') {
      try {
        await erase(env, directus, { msg, body: original.data as ErasureMessage });
        msg.ack();
        report.erasures++;
      } catch (e) {
        if (isPermanent(e)) {
          const reason = `${PENDING_ERASURE}, Directus rejected it: ${e.message}`.slice(0, 2000);
          kept.push({ msg, row: { ...row, reason }, erasure: true });
        } else retry(msg, e);
      }
      continue;
    }
    if (row.site_id !== null && row.person_key !== null) {
      const key = personSlot(row.site_id, row.person_key);
      let answer = erased.get(key);
      if (answer === undefined) {
        answer = check(env, row.site_id, row.person_key as PersonKey);
        erased.set(key, answer);
      }
      try {
        if (await answer) {
          if (msg.attempts > 1) droppedAgain.push({ msg, row });
          else {
            msg.ack();
            report.dropped++;
          }
          continue;
        }
      } catch (e) {
        // Unsure whether the person was erased: ask again on the next delivery.
        retry(msg, e);
        continue;
      }
    }
    kept.push({ msg, row });
  }

  if (droppedAgain.length > 0) {
    try {
      // By filter: deleting a key that does not exist is refused (403) by Directus.
      await directus.deleteWhere('dead_letters', { id: { _in: droppedAgain.map((i) => i.row.id) } });
      for (const { msg } of droppedAgain) msg.ack();
      report.dropped += droppedAgain.length;
    } catch (e) {
      for (const { msg } of droppedAgain) retry(msg, e);
    }
  }

  // Written rows are acked only after the second erasure check (forgetIfErasedMeanwhile),
  // except a refused erasure's: its person is always erased at the edge (the tombstone comes
  // first), and its letter is the record that Directus still holds their rows.
  const stored: Item[] = [];
  const write = async (items: Item[]) => {
    await directus.createMissing(
      'dead_letters',
      items.map((i) => ({ ...i.row })),
    );
    for (const item of items) {
      if (!item.erasure) stored.push(item);
      else {
        item.msg.ack();
        report.stored++;
      }
    }
  };
  if (kept.length > 0) {
    try {
      await write(kept);
    } catch (e) {
      if (!isPermanent(e)) for (const { msg } of kept) retry(msg, e);
      // One row Directus refuses must not hold back the others.
      else
        for (const item of kept) {
          try {
            await write([item]);
          } catch (one) {
            if (isPermanent(one)) {
              item.msg.ack();
              report.refused++;
              count('dead_letter_refused');
              console.error(
                JSON.stringify({
                  level: 'error',
                  msg: 'sync.dead_letter_refused',
                  status: one.status,
                  reason: withoutQuotedValues(item.row.reason).slice(0, 200),
                }),
              );
            } else retry(item.msg, one);
          }
        }
    }
  }
  // Stored at once: a consumer isolate may never serve the ingest request that would store them.
  if (report.refused > 0) await flushStats(env);
  await forgetIfErasedMeanwhile(env, directus, check, stored, report, retry);
  const requeued: { msg: Message<unknown>; written?: string }[] = [];
  for (const item of requeue) {
    try {
      // Bounded: a send that never settles held the batch until the runtime ended it.
      await settledWithin(env.EVENTS_DLQ.send(item.msg.body));
      requeued.push(item);
    } catch {
      // The queue is unavailable too (or did not answer in time, and its copy may land after
      // all: a second letter for the same message): the one retry left is all there is. A
      // letter written on this delivery stays (its row is deleted only after the copy is
      // sent), so an operator still finds it and can resend it, whatever the queue does with
      // this message.
      item.msg.retry({ delaySeconds: retryDelaySeconds(item.msg.attempts) });
      report.retried++;
    }
  }
  // The copy writes its own row under its own id: the one written on this delivery goes.
  const written = requeued.flatMap((i) => (i.written === undefined ? [] : [i.written]));
  if (written.length > 0) {
    try {
      await directus.deleteWhere('dead_letters', { id: { _in: written } });
    } catch {
      // Directus is gone again: the copy will write a second letter for the same message.
    }
  }
  for (const { msg } of requeued) {
    msg.ack();
    report.requeued++;
  }
  if (report.retried > 0 || report.requeued > 0 || report.refused > 0)
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: 'sync.dead_letters',
        ...report,
        ...(cause !== undefined && { cause }),
      }),
    );
  return report;
}

/**
 * A person erased between the check above and the write would keep the letter: their
 * erasure may have deleted their letters before this one was written. Asked again after
 * the write, the tombstone is there (it is set before the erasure message is sent), so the
 * letter goes now. A person erased after this second check is covered by their erasure.
 * Only then are the written messages acked; when the check or the delete fails they are
 * retried, and the redelivery, finding the person erased, deletes the row.
 */
async function forgetIfErasedMeanwhile(
  env: Env,
  directus: DirectusClient,
  check: ErasureCheck,
  stored: Item[],
  report: DeadLetterReport,
  retry: Retry,
): Promise<void> {
  const people = new Map<string, { siteId: string; personKey: PersonKey; items: Item[] }>();
  for (const item of stored) {
    const { site_id: siteId, person_key: personKey } = item.row;
    // A letter that names nobody cannot be about an erased person.
    if (siteId === null || personKey === null) {
      item.msg.ack();
      report.stored++;
      continue;
    }
    const key = personSlot(siteId, personKey);
    const entry = people.get(key);
    if (entry) entry.items.push(item);
    else people.set(key, { siteId, personKey: personKey as PersonKey, items: [item] });
  }
  for (const { siteId, personKey, items } of people.values()) {
    try {
      if (await check(env, siteId, personKey)) {
        await directus.deleteWhere('dead_letters', { id: { _in: items.map((i) => i.row.id) } });
        report.dropped += items.length;
      } else report.stored += items.length;
      for (const { msg } of items) msg.ack();
    } catch (e) {
      // On its last delivery the message goes to this queue again under a new id (see
      // `retry`): its row is deleted once that copy is sent, or the copy would write a second one.
      for (const { msg, row } of items) retry(msg, e, row.id);
    }
  }
}
