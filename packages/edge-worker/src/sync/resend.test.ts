/**
 * Resending dead letters when the queue refuses part of a resend: the letters sent stay
 * deleted and counted, the others stay as they were, and calling again sends each letter's
 * message once (a covisit letter sent twice would count its pairs twice).
 */
import type { CovisitsMessage, QueueMessage } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import { type DirectusClient, directusClient } from '../directus/client.ts';
import { ResendFailed, resendDeadLetters } from './resend.ts';

type Letter = { id: string; failed_at: string; message: unknown };

/** `dead_letters` in memory: read by id, deleted by id. */
function lettersDirectus(letters: Letter[]): { client: DirectusClient; held: Map<string, Letter> } {
  const held = new Map(letters.map((l) => [l.id, l]));
  const idsOf = (filter: unknown): string[] =>
    (filter as { id?: { _in?: string[] } } | undefined)?.id?._in ?? [...held.keys()];
  const base = directusClient({
    url: 'http://directus.invalid',
    token: 't',
    fetch: async () => {
      throw new Error('not scripted');
    },
  });
  const client: DirectusClient = {
    ...base,
    readItems: async <T>(_collection: string, query: { filter?: unknown } = {}): Promise<T[]> =>
      idsOf(query.filter).flatMap((id) => {
        const letter = held.get(id);
        return letter ? [letter as T] : [];
      }),
    deleteWhere: async (_collection: string, filter: unknown): Promise<number> => {
      let deleted = 0;
      for (const id of idsOf(filter)) if (held.delete(id)) deleted++;
      return deleted;
    },
  };
  return { client, held };
}

/** A queue that refuses the sendBatch calls `refuse` names (1-based), and records the rest. */
function refusingQueue(refuse: (call: number) => boolean): { queue: Queue; sent: QueueMessage[] } {
  const sent: QueueMessage[] = [];
  let calls = 0;
  const queue = {
    sendBatch: async (items: Iterable<MessageSendRequest<QueueMessage>>) => {
      calls++;
      if (refuse(calls)) throw new Error('Queue send failed');
      for (const item of items) sent.push(item.body);
    },
  } as unknown as Queue;
  return { queue, sent };
}

/** A covisits message of about 100 KB: two fit in one sendBatch (256 KB), three do not. */
function bigPairs(n: number): CovisitsMessage {
  const id = (k: number) => `product-${n}-${k}-`.padEnd(110, 'x');
  return {
    kind: 'covisits',
    siteId: 'demo',
    pairs: Array.from({ length: 400 }, (_, k) => ({
      from: id(k),
      to: id(k + 1),
      at: '2026-11-27T10:00:00.000Z',
    })),
  };
}

describe('resending dead letters when the queue refuses part of it', () => {
  it('deletes and counts the letters sent before the refusal, keeps the rest, and never sends one twice', async () => {
    const letters = [1, 2, 3].map((n) => ({
      id: `letter-${n}`,
      failed_at: '2026-11-27T10:00:00.000Z',
      message: bigPairs(n),
    }));
    const { client, held } = lettersDirectus(letters);
    const ids = letters.map((l) => l.id);

    // Each letter (~100 KB, over one message's 64 KB budget) goes in a sendBatch of its own:
    // the first (letter 1) goes out; the second (letter 2) is refused, and letter 3 waits.
    const first = refusingQueue((call) => call === 2);
    const failed = await resendDeadLetters(client, first.queue, { ids }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ResendFailed);
    expect(failed).toMatchObject({ stage: 'send', resent: 1 });
    expect(first.sent).toEqual([letters[0]?.message]);
    expect([...held.keys()]).toEqual(['letter-2', 'letter-3']);

    // Called again, as the answer says: only the letters not sent go.
    const again = refusingQueue(() => false);
    expect(await resendDeadLetters(client, again.queue, { ids })).toMatchObject({
      resent: 2,
      notFound: ['letter-1'],
    });
    expect(again.sent).toEqual([letters[1]?.message, letters[2]?.message]);
    expect(held.size).toBe(0);
  });
});
