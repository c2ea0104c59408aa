/**
 * The access answer's keys and streaming (pure logic; the real-Directus path is in
 * test/directus/access.test.ts): a person is looked up under every key the edge knows them
 * by, a replay's row included; events pages join into one JSON document, and a page that
 * cannot be read breaks the answer off rather than ending it as if it were whole.
 */
import { describe, expect, it } from 'vitest';
import { emptyProfile } from '../profile/model.ts';
import { type DownstreamHoldings, downstreamKeys, streamAccessAnswer } from './downstream.ts';

function holdings(pages: Record<string, unknown>[][], failAt?: number): DownstreamHoldings {
  const [first = [], ...rest] = pages;
  return {
    personKeys: ['anon:a'],
    people: [{ id: 'demo:anon:a' }],
    consentRecords: [],
    deadLetters: [],
    orders: [{ id: 'o1' }],
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
        orders: [{ id: 'o1' }],
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

describe('the keys an access request looks a person up by', () => {
  it("include the browsers and the user id a replay's row holds (the profile holds none of them then)", () => {
    const keys = downstreamKeys('user:u1', {
      seenEventIds: 0,
      replaying: {
        startedAt: Date.now(),
        previous: 3,
        browsers: ['b1', 'b2'],
        identity: { siteId: 'demo', personKey: 'user:u1' },
      },
    });
    expect(keys.sort()).toEqual(['anon:b1', 'anon:b2', 'user:u1']);
  });

  it("include both the rebuilt profile's browsers and the row's during a replay", () => {
    const profile = { ...emptyProfile('demo', 'user:u2', new Date().toISOString()), userId: 'u2' };
    profile.anonymousIds = ['b4', 'b3'];
    const keys = downstreamKeys('user:u2', {
      seenEventIds: 1,
      profile,
      replaying: { previous: 1, browsers: ['b3', 'b5'], identity: { siteId: 'demo', personKey: 'user:u2' } },
    });
    expect(keys.sort()).toEqual(['anon:b3', 'anon:b4', 'anon:b5', 'user:u2']);
  });
});
