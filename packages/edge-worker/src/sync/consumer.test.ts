/**
 * The queue consumer's handling of "viewed next" pairs: one `covisits` message per
 * ingest request counts as all of its pairs, settles as one message (acked once, or
 * retried as a whole), and a malformed one is dead-lettered; single `covisit` messages
 * (from before the batched form) still count. No Directus call is needed for pairs.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { CovisitMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { directusClient } from '../directus/client.ts';
import { syncBatch } from './consumer.ts';

const noDirectus = directusClient({
  url: 'http://directus.invalid',
  token: 't',
  fetch: async () => {
    throw new Error('pairs must not reach Directus');
  },
});

const at = '2026-11-26T09:00:00.000Z';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('covisit pairs in the consumer', () => {
  it('counts every pair of a covisits message and of single covisit messages, acking each message once', async () => {
    const applied: CovisitMessage[][] = [];
    const batch = createMessageBatch('attune-events', [
      {
        id: 'pairs-1',
        timestamp: new Date(),
        attempts: 1,
        body: {
          kind: 'covisits',
          siteId: 'demo',
          pairs: [
            { from: 'p1', to: 'p2', at },
            { from: 'p2', to: 'p3', at },
          ],
        },
      },
      {
        id: 'pair-old',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisit', siteId: 'demo', from: 'p9', to: 'p1', at },
      },
    ]);
    const report = await syncBatch(batch, env, {
      directus: noDirectus,
      applyCovisits: async (_env, messages) => {
        applied.push(messages);
        return messages.length;
      },
    });
    expect(applied).toEqual([
      [
        { kind: 'covisit', siteId: 'demo', from: 'p1', to: 'p2', at },
        { kind: 'covisit', siteId: 'demo', from: 'p2', to: 'p3', at },
        { kind: 'covisit', siteId: 'demo', from: 'p9', to: 'p1', at },
      ],
    ]);
    expect(report).toMatchObject({ acked: 2, retried: 0, deadLettered: 0 });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(['pair-old', 'pairs-1']);
  });

  it('retries the whole message when counting fails, and dead-letters a malformed one', async () => {
    const letters: unknown[] = [];
    vi.spyOn(env.EVENTS_DLQ, 'send').mockImplementation(async (body) => {
      letters.push(body);
      return undefined as unknown as QueueSendResponse;
    });
    const batch = createMessageBatch('attune-events', [
      {
        id: 'pairs-2',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: 'p1', to: 'p2', at }] },
      },
      {
        id: 'pairs-bad',
        timestamp: new Date(),
        attempts: 1,
        body: { kind: 'covisits', siteId: 'demo', pairs: [{ from: '', to: 'p2', at }] },
      },
    ]);
    const report = await syncBatch(batch, env, {
      directus: noDirectus,
      applyCovisits: async () => {
        throw new Error('CovisitationDO unavailable');
      },
    });
    expect(report).toMatchObject({ acked: 0, retried: 1, deadLettered: 1 });
    expect(letters).toEqual([
      expect.objectContaining({ messageId: 'pairs-bad', reason: expect.stringContaining('pairs.0.from') }),
    ]);
  });
});
