/**
 * Queue messages: an `events` message stands for one `event` message per item, with the
 * message's site, person, purposes and traceparent; the consumer schema accepts both
 * forms and refuses an `events` message without events or with a bad one.
 */
import { describe, expect, it } from 'vitest';
import type { CustomerAction } from './event.ts';
import { type EventsMessage, eventMessagesOf, MAX_EVENTS_PER_MESSAGE, QueueMessageSchema } from './queue.ts';

const at = '2026-11-26T09:00:00.000Z';
const action = (n: number): CustomerAction => ({
  id: `01JDZ00000000000000000000${n}`,
  type: 'track',
  name: 'product.viewed',
  timestamp: at,
  anonymousId: 'a-1',
  schemaVersion: 1,
});
const enrichment = { receivedAt: at, correctedTimestamp: at, device: 'mobile' as const };

const events = (items: number[]): EventsMessage => ({
  kind: 'events',
  siteId: 'demo',
  personId: 'user:u-1',
  purposes: ['analytics', 'marketing'],
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  events: items.map((n) => ({ event: action(n), enrichment })),
});

describe('events messages', () => {
  it('stand for one event message per item, in order, each with its own purposes list', () => {
    const single = {
      kind: 'event' as const,
      siteId: 'demo',
      personId: 'anon:a-1',
      event: action(9),
      enrichment,
      purposes: ['analytics' as const],
    };
    const out = eventMessagesOf([events([1, 2]), single, { kind: 'covisits', siteId: 'demo', pairs: [] }]);
    expect(out).toEqual([
      {
        kind: 'event',
        siteId: 'demo',
        personId: 'user:u-1',
        event: action(1),
        enrichment,
        purposes: ['analytics', 'marketing'],
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
      expect.objectContaining({ event: action(2), personId: 'user:u-1' }),
      single,
    ]);
    expect(out[0]?.purposes).not.toBe(out[1]?.purposes);
  });

  it('pass the consumer schema; empty, oversized or with a bad event they do not', () => {
    expect(QueueMessageSchema.safeParse(events([1, 2, 3])).success).toBe(true);
    expect(QueueMessageSchema.safeParse(events([])).success).toBe(false);
    const many = events(Array.from({ length: MAX_EVENTS_PER_MESSAGE + 1 }, (_, i) => i % 10));
    expect(QueueMessageSchema.safeParse(many).success).toBe(false);
    const bad = events([1]);
    bad.events.push({ event: { ...action(2), id: 'nope' }, enrichment });
    expect(QueueMessageSchema.safeParse(bad).success).toBe(false);
  });
});
