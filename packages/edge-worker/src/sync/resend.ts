/**
 * Resending dead letters: once an operator has fixed what made the sync set messages aside
 * (a Directus field, a permission, an outage longer than the retry period), the letters'
 * original messages go back to the EVENTS queue and their rows leave `dead_letters`.
 * Before, a letter could be read but not acted on, so its events never reached the log.
 *
 * - The original is checked against the queue message schema first; a letter whose message
 *   is not one (what the sync refused as malformed) cannot be resent and stays, named.
 * - Sent first, deleted after: a letter deleted but never sent would be lost. If the delete
 *   fails, resending again is safe: the sync writes every row idempotently (events by id,
 *   consent records by id, people by version) and drops messages about erased people.
 * - A message that fails again is set aside again, as a new letter.
 */
import { type QueueMessage, QueueMessageSchema } from '@attune/shared-schema';
import type { DirectusClient } from '../directus/client.ts';
import { sendMessages } from '../ingest/queue-producer.ts';

/** Which letters to resend: these ids, or the oldest `limit` (of one site when `siteId` is set). */
export interface ResendSelection {
  ids?: string[];
  siteId?: string;
  limit: number;
}

export interface ResendReport {
  resent: number;
  /** Letters kept because their message is not a queue message (nothing can sync it). */
  unsendable: { id: string; reason: string }[];
  /** Asked-for ids that are not in `dead_letters` (already resent, erased or expired). */
  notFound: string[];
  /** More letters match the selection than this call took (call again). */
  more: boolean;
}

/** Thrown when the letters were sent but could not be deleted (resending again is safe). */
export class LettersNotDeletedError extends Error {
  constructor(
    readonly resent: number,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : 'delete failed');
  }
}

type LetterRow = { id: string; message: unknown };

/** Resends the selected letters' messages to `queue` and deletes the letters sent. */
export async function resendDeadLetters(
  directus: DirectusClient,
  queue: Queue,
  selection: ResendSelection,
): Promise<ResendReport> {
  const filter: Record<string, unknown>[] = [];
  if (selection.ids !== undefined) filter.push({ id: { _in: selection.ids } });
  if (selection.siteId !== undefined) filter.push({ site_id: { _eq: selection.siteId } });
  // One row more than asked tells whether more remain.
  const letters = await directus.readItems<LetterRow>('dead_letters', {
    ...(filter.length > 0 && { filter: { _and: filter } }),
    fields: ['id', 'message'],
    sort: ['failed_at', 'id'],
    limit: selection.limit + 1,
  });
  const more = letters.length > selection.limit;
  const taken = letters.slice(0, selection.limit);

  const sendable: { id: string; message: QueueMessage }[] = [];
  const unsendable: ResendReport['unsendable'] = [];
  for (const letter of taken) {
    const parsed = QueueMessageSchema.safeParse(letter.message);
    if (parsed.success) sendable.push({ id: letter.id, message: parsed.data as QueueMessage });
    else {
      const issue = parsed.error.issues[0];
      unsendable.push({
        id: letter.id,
        reason: `not a queue message: ${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}`,
      });
    }
  }
  const found = new Set(taken.map((l) => l.id));
  const notFound = (selection.ids ?? []).filter((id) => !found.has(id));

  if (sendable.length > 0) {
    await sendMessages(
      queue,
      sendable.map((s) => s.message),
    );
    try {
      await directus.deleteItems(
        'dead_letters',
        sendable.map((s) => s.id),
      );
    } catch (e) {
      throw new LettersNotDeletedError(sendable.length, e);
    }
  }
  return { resent: sendable.length, unsendable, notFound, more };
}
