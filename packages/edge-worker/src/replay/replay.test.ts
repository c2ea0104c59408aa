/**
 * Replay against a stand-in event log (Directus's REST answers, stubbed at fetch): what it
 * must never do to a person who was erased.
 */
import { env } from 'cloudflare:workers';
import { eventMessagesOf } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ADMIN_HEADERS,
  anonId,
  call,
  collect,
  people,
  productView,
  recordQueue,
  SITE,
} from '../ingest/test-support.ts';
import { viewProfile } from '../profile/client.ts';
import { type EventRow, eventRow } from '../sync/mapping.ts';

let queue = recordQueue();
afterEach(() => {
  vi.restoreAllMocks();
  queue = recordQueue();
});

/** Answers Directus's `people` and `events` reads with `rows`; everything else goes out as usual. */
function eventLog(rows: EventRow[]): void {
  const original = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === '/items/people') return Response.json({ data: [] });
    if (url.pathname === '/items/events') {
      const offset = Number(url.searchParams.get('offset') ?? '0');
      return Response.json({ data: offset === 0 ? rows : [] });
    }
    return original(input, init);
  });
}

describe('replay of an erased person', () => {
  it('keeps the tombstone: nothing is rebuilt and late events stay dropped', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    // What the event log still holds while the erasure message waits in the queue.
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    expect(logged).toHaveLength(1);
    const erased = await people(`anon:${a}`, 'DELETE');
    expect(erased.status).toBe(200);

    eventLog(logged);
    await call(null, {
      method: 'POST',
      path: `/v1/admin/replay/${encodeURIComponent(`anon:${a}`)}?siteId=${SITE}`,
      origin: null,
      headers: ADMIN_HEADERS,
    });
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();

    const late = await collect([productView(a, 'p2', 'hats')]);
    expect(await late.json()).toMatchObject({ accepted: 0, dropped: 1 });
  });
});

describe('which people can be replayed', () => {
  it('anyone whose id the event schema accepts, a space in it included', async () => {
    const a = `shop visitor ${anonId()}`;
    await collect([productView(a, 'p1', 'shoes')]);
    eventLog(eventMessagesOf(queue.messages).map(eventRow));
    const replay = (key: string) =>
      call(null, {
        method: 'POST',
        path: `/v1/admin/replay/${encodeURIComponent(key)}?siteId=${SITE}`,
        origin: null,
        headers: ADMIN_HEADERS,
      });
    const res = await replay(`anon:${a}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ personKey: `anon:${a}`, events: 1, accepted: 1 });
    // Over the id length limit, it names nobody.
    expect((await replay(`anon:${'x'.repeat(129)}`)).status).toBe(400);
  });
});
