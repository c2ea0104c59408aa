/** Enrichment: the clock-skew correction of event times; what a page URL says. */
import { describe, expect, it } from 'vitest';
import { makeEvent } from '../ingest/test-support.ts';
import { enrichEvent, requestFacts, withPageFacts } from './index.ts';

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

  it('corrects a clock days off, however far (a phone set to the wrong date)', () => {
    const facts = requestFacts(request, new Date(NOW - 3 * 24 * HOUR).toISOString(), NOW);
    const event = {
      ...makeEvent('a1', 'page.viewed'),
      timestamp: new Date(NOW - 3 * 24 * HOUR - 5000).toISOString(),
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

describe('what the page URL says', () => {
  it('fills in the path, the query and the utm campaign of a URL sent alone (as the browser tag sends it)', () => {
    const url = 'https://shop.test/p/w%C3%B6k?utm_source=news&utm_campaign=spring+sale&utm_term=&x=1';
    expect(withPageFacts({ page: { url, title: 'Wok' }, locale: 'de-DE' })).toEqual({
      page: {
        url,
        title: 'Wok',
        path: '/p/w%C3%B6k',
        search: '?utm_source=news&utm_campaign=spring+sale&utm_term=&x=1',
      },
      locale: 'de-DE',
      campaign: { source: 'news', name: 'spring sale' },
    });
  });

  it("keeps a producer's own path, query and campaign", () => {
    const context = {
      page: { url: 'https://shop.test/a?utm_source=x', path: '/b', search: '' },
      campaign: { source: 'partner' },
    };
    expect(withPageFacts(context)).toEqual(context);
  });

  it('adds no campaign without utm parameters, and nothing for a URL that does not parse', () => {
    expect(withPageFacts({ page: { url: 'https://shop.test/' } })).toEqual({
      page: { url: 'https://shop.test/', path: '/', search: '' },
    });
    expect(withPageFacts({ page: { url: 'not a url' } })).toEqual({ page: { url: 'not a url' } });
    expect(withPageFacts({ locale: 'fr' })).toEqual({ locale: 'fr' });
  });

  it('cuts a long campaign value to the schema limit without splitting an emoji', () => {
    const value = `${'a'.repeat(255)}😀`;
    const { campaign } = withPageFacts({
      page: { url: `https://shop.test/?utm_content=${encodeURIComponent(value)}` },
    });
    expect(campaign).toEqual({ content: 'a'.repeat(255) });
  });
});
