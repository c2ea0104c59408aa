/** Enrichment: the clock-skew correction of event times. */
import { describe, expect, it } from 'vitest';
import { makeEvent } from '../ingest/test-support.ts';
import { enrichEvent, requestFacts } from './index.ts';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const HOUR = 3_600_000;
const request = new Request('https://edge.test/v1/collect', { method: 'POST' });

describe('clock-skew correction', () => {
  it('moves an event by its batch’s skew (a client clock two hours fast)', () => {
    const facts = requestFacts(request, new Date(NOW + 2 * HOUR).toISOString(), NOW);
    const event = {
      ...makeEvent('a1', 'page.viewed'),
      timestamp: new Date(NOW + 2 * HOUR - 5000).toISOString(),
    };
    expect(enrichEvent(event, facts).correctedTimestamp).toBe(new Date(NOW - 5000).toISOString());
  });

  it('never puts an event after the time the Worker received it', () => {
    // sentAt 23 h slow and the event stamped 23 h fast: each within the accepted window.
    const facts = requestFacts(request, new Date(NOW - 23 * HOUR).toISOString(), NOW);
    const event = { ...makeEvent('a1', 'page.viewed'), timestamp: new Date(NOW + 23 * HOUR).toISOString() };
    expect(enrichEvent(event, facts).correctedTimestamp).toBe(new Date(NOW).toISOString());
  });
});
