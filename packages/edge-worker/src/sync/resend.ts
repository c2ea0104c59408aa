/**
 * Resending dead letters: once an operator has fixed what made the sync set messages aside
 * (a Directus field, a permission, an outage longer than the retry period), the letters'
 * original messages go back to the EVENTS queue and their rows leave `dead_letters`.
 * Before, a letter could be read but not acted on, so its events never reached the log.
 *
 * - The original is checked against the queue message schema first; a letter whose message
 *   is not one (what the sync refused as malformed) cannot be resent and stays, named.
 * - A chunk at a time (messages can be 64 KB each): read, then per `sendBatch` (a chunk
 *   may need several, at most 100 messages and 256 KB each) send, then delete what was sent.
 *   Sent first, deleted after: a letter deleted but never sent would be lost. A send that
 *   fails leaves exactly the letters not sent (and `resent` counts exactly those that were),
 *   so calling again sends no letter twice. A send the queue does not answer within
 *   QUEUE_SEND_BUDGET_MS counts as failed, its letters kept, but they may have reached the
 *   queue (as after a failed delete, below). If a delete fails, resending those letters again
 *   is safe for events, consent records, profiles and erasures (the sync writes them
 *   idempotently and drops messages about erased people); "viewed next" counts (covisits)
 *   would be added twice (the copy is a new queue message, which the count's per-message
 *   memory cannot tell from another).
 * - Letters are taken oldest first, whole failure times at a time; `next` is the last time
 *   taken, so letters that cannot be resent are passed over by the next call instead of
 *   filling every page. (A letter written meanwhile with an earlier time waits for the next
 *   pass from the start.)
 * - A message that fails again is set aside again, as a new letter.
 */
import { type QueueMessage, QueueMessageSchema } from '@attune/shared-schema';
import type { DirectusClient } from '../directus/client.ts';
import { chunkMessages, QueueTimeoutError, settledWithin } from '../ingest/queue-producer.ts';
import { issueOf } from './consumer.ts';

/** Letters read, sent and deleted together (a letter's message is at most about 64 KB). */
export const RESEND_CHUNK = 50;

/** Which letters to resend: these ids, or the oldest `limit` (of a site; failed after a cursor). */
export type ResendSelection = { ids: string[] } | { siteId?: string; limit: number; after?: string };

export interface ResendReport {
  resent: number;
  /** Letters kept because their message is not a queue message (nothing can sync it). */
  unsendable: { id: string; reason: string }[];
  /** Asked-for ids that are not in `dead_letters` (already resent, erased or expired). */
  notFound: string[];
  /** More letters match the selection than this call took: call again with `after: next`. */
  more: boolean;
  next?: string;
}

/**
 * A resend that stopped part-way: `resent` letters were sent and deleted before `stage` failed.
 * `unanswered`: the queue did not answer the send within QUEUE_SEND_BUDGET_MS, so its letters,
 * still listed, may have reached the queue all the same.
 */
export class ResendFailed extends Error {
  readonly unanswered: boolean;
  constructor(
    readonly stage: 'read' | 'send' | 'delete',
    readonly resent: number,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : `${stage} failed`);
    this.unanswered = cause instanceof QueueTimeoutError;
  }
}

/** A cursor from `next`: the failure time of the last letter a call took, or undefined when the text is not one. */
export function parseCursor(text: string): string | undefined {
  return /^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text))
    ? text
    : undefined;
}

type Candidate = { id: string; failed_at: string };
type LetterRow = { id: string; message: unknown };

/** Resends the selected letters' messages to `queue` and deletes the letters sent. */
export async function resendDeadLetters(
  directus: DirectusClient,
  queue: Queue,
  selection: ResendSelection,
): Promise<ResendReport> {
  const report: ResendReport = { resent: 0, unsendable: [], notFound: [], more: false };
  const fail = (stage: ResendFailed['stage'], e: unknown) => new ResendFailed(stage, report.resent, e);

  let candidates: Candidate[];
  if ('ids' in selection) candidates = [...new Set(selection.ids)].map((id) => ({ id, failed_at: '' }));
  else {
    const { siteId, limit, after } = selection;
    const bySite = siteId === undefined ? [] : [{ site_id: { _eq: siteId } }];
    const read = (time: Record<string, unknown>[], count: number) =>
      directus.readItems<Candidate>('dead_letters', {
        ...(bySite.length + time.length > 0 && { filter: { _and: [...bySite, ...time] } }),
        fields: ['id', 'failed_at'],
        sort: ['failed_at', 'id'],
        limit: count,
      });
    try {
      // Ids and times only (messages are read a chunk at a time); one more tells whether more remain.
      candidates = await read(after === undefined ? [] : [{ failed_at: { _gt: after } }], limit + 1);
      report.more = candidates.length > limit;
      if (report.more) {
        // A call ends between two failure times, never within one: the next starts after
        // the last time taken, whatever was deleted or kept meanwhile.
        const boundary = candidates[limit]?.failed_at;
        candidates = candidates.slice(0, limit).filter((c) => c.failed_at !== boundary);
        // More letters failed at that one time than the limit: take them all.
        if (candidates.length === 0 && boundary !== undefined)
          candidates = await read([{ failed_at: { _eq: boundary } }], -1);
      }
    } catch (e) {
      throw fail('read', e);
    }
  }

  for (let i = 0; i < candidates.length; i += RESEND_CHUNK) {
    const chunk = candidates.slice(i, i + RESEND_CHUNK).map((c) => c.id);
    let letters: LetterRow[];
    try {
      letters = await directus.readItems<LetterRow>('dead_letters', {
        filter: { id: { _in: chunk } },
        fields: ['id', 'message'],
        limit: -1,
      });
    } catch (e) {
      throw fail('read', e);
    }
    const found = new Set(letters.map((l) => l.id));
    if ('ids' in selection) report.notFound.push(...chunk.filter((id) => !found.has(id)));

    const sendable: { id: string; message: QueueMessage }[] = [];
    for (const letter of letters) {
      const parsed = QueueMessageSchema.safeParse(letter.message);
      if (parsed.success) sendable.push({ id: letter.id, message: parsed.data as QueueMessage });
      else report.unsendable.push({ id: letter.id, reason: `not a queue message: ${issueOf(parsed)}` });
    }
    // Each sendBatch's letters are deleted before the next is sent: a failure part-way leaves
    // no letter behind that was sent, to be sent again by the next call.
    let taken = 0;
    for (const part of chunkMessages(sendable.map((s) => s.message))) {
      const sent = sendable.slice(taken, taken + part.length);
      taken += part.length;
      try {
        // Bounded: a queue that never answered held the operator's request open indefinitely.
        await settledWithin(queue.sendBatch(part.map((body) => ({ body }))));
      } catch (e) {
        throw fail('send', e);
      }
      try {
        // By filter: a letter deleted meanwhile (retention, erasure) must not fail the call.
        await directus.deleteWhere('dead_letters', { id: { _in: sent.map((s) => s.id) } });
      } catch (e) {
        throw fail('delete', e);
      }
      report.resent += sent.length;
    }
  }

  if (report.more) report.next = candidates[candidates.length - 1]?.failed_at;
  return report;
}
