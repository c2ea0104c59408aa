/**
 * The access answer's streaming (pure logic; the real-Directus path is in
 * test/directus/access.test.ts): events pages join into one JSON document, and a page that
 * cannot be read breaks the answer off rather than ending it as if it were whole.
 */
import { describe, expect, it } from 'vitest';
import { type DownstreamHoldings, streamAccessAnswer } from './downstream.ts';

function holdings(pages: Record<string, unknown>[][], failAt?: number): DownstreamHoldings {
  const [first = [], ...rest] = pages;
  return {
    personKeys: ['anon:a'],
    people: [{ id: 'demo:anon:a' }],
    consentRecords: [],
    deadLetters: [],
    firstEvents: first,
    async *moreEvents() {
      for (const [i, page] of rest.entries()) {
        if (i + 1 === failAt) throw new Error('Directus went away');
        yield page;
      }
    },
  };
}

describe('the streamed access answer', () => {
  it('is one JSON document with every page of events, in order', async () => {
    const pages = [[{ id: '1' }, { id: '2' }], [{ id: '3' }], [{ id: '4' }]];
    const text = await new Response(
      streamAccessAnswer({ siteId: 'demo', personId: 'anon:a' }, holdings(pages), () => {}),
    ).text();
    expect(JSON.parse(text)).toEqual({
      siteId: 'demo',
      personId: 'anon:a',
      downstream: {
        personKeys: ['anon:a'],
        people: [{ id: 'demo:anon:a' }],
        consentRecords: [],
        deadLetters: [],
        events: [{ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }],
      },
    });
  });

  it('holds an empty events list when there are none', async () => {
    const text = await new Response(streamAccessAnswer({ siteId: 'demo' }, holdings([]), () => {})).text();
    expect((JSON.parse(text) as { downstream: { events: unknown[] } }).downstream.events).toEqual([]);
  });

  it('breaks off, reporting the failure, when a later page cannot be read', async () => {
    const failures: unknown[] = [];
    const body = streamAccessAnswer(
      { siteId: 'demo' },
      holdings([[{ id: '1' }], [{ id: '2' }], [{ id: '3' }]], 2),
      (e) => failures.push(e),
    );
    await expect(new Response(body).text()).rejects.toThrow('Directus went away');
    expect(failures).toHaveLength(1);
  });
});
