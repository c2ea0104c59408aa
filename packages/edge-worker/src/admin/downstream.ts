/**
 * What Directus holds about a person, for an access request: their `people` row, consent
 * records, events and dead letters, under every key they were known by (the person key,
 * the browsers merged into them, their user id, as the edge and Directus's people rows
 * record them), as the erasure deletes them; and the site's orders placed under those user
 * and browser ids, as the erasure anonymises them.
 *
 * Events are the one part that grows without bound (a busy person over the retention
 * period), so they are read a page at a time as the answer is streamed, never held whole:
 * holding them all, and their JSON, could run the Worker out of memory.
 */
import type { DirectusClient } from '../directus/client.ts';
import { userIdOf } from '../identity/index.ts';
import type { ProfileExport } from '../profile/profile-do.ts';
import type { PersonKey } from '../profile/types.ts';
import { withRecordedKeys } from '../sync/consumer.ts';
import { erasedPersonKeys, personOrdersFilter } from '../sync/mapping.ts';

type Row = Record<string, unknown>;

/** Events per Directus read while streaming. */
export const EVENT_PAGE_SIZE = 500;

export interface DownstreamHoldings {
  /** The keys the rows were looked up by. */
  personKeys: string[];
  people: Row[];
  consentRecords: Row[];
  deadLetters: Row[];
  /** The site's orders placed under the person's user or browser ids, oldest first. */
  orders: Row[];
  /** The first page of events, in the order they were received. */
  firstEvents: Row[];
  /** The pages after the first, read on demand. */
  moreEvents(): AsyncGenerator<Row[]>;
}

/**
 * Every key a person's rows downstream can be stored under, from what the edge holds: during
 * a replay (or after one abandoned) the browsers merged before it, and who the person is, are
 * in the replay's row until it links them again; after a retention run that failed part-way,
 * the browsers it has yet to forget are in its row.
 */
export function downstreamKeys(personKey: PersonKey, held: ProfileExport): string[] {
  const replayed = held.replaying?.identity?.personKey;
  return erasedPersonKeys({
    personId: personKey,
    anonymousIds: [
      ...new Set([
        ...(held.profile?.anonymousIds ?? []),
        ...(held.replaying?.browsers ?? []),
        ...(held.retiring?.browsers ?? []).map((key) => key.slice('anon:'.length)),
      ]),
    ],
    userId: held.profile?.userId ?? (replayed !== undefined ? userIdOf(replayed) : undefined),
  });
}

/**
 * Reads the person's rows of the site and keys: people, consent records, dead letters and
 * orders whole, events' first page (so an unreachable Directus shows before an answer starts).
 */
export async function readDownstream(
  directus: DirectusClient,
  siteId: string,
  keys: string[],
  options: { unsitedOrders?: boolean; pageSize?: number } = {},
): Promise<DownstreamHoldings> {
  const pageSize = options.pageSize ?? EVENT_PAGE_SIZE;
  // The keys Directus recorded for the person too, as the erasure deletes them.
  const personKeys = await withRecordedKeys(directus, siteId, keys);
  const filter = { _and: [{ site_id: { _eq: siteId } }, { person_key: { _in: personKeys } }] };
  const all = (collection: string, sort: string[]) => directus.readAll<Row>(collection, { filter, sort });
  // Keyset paging on the receive time: rows the retention deletes meanwhile do not shift a
  // page. Rows received at the boundary's very time are skipped by count (Directus cannot
  // compare strings such as ids for order); only a row written meanwhile with exactly that
  // time, ordered before those, could shift them.
  const eventsAfter = (boundary: { at: string; read: number } | undefined) =>
    directus.readItems<Row>('events', {
      filter:
        boundary === undefined ? filter : { _and: [...filter._and, { received_at: { _gte: boundary.at } }] },
      sort: ['received_at', 'id'],
      limit: pageSize,
      ...(boundary !== undefined && { offset: boundary.read }),
    });
  const ordersFilter = personOrdersFilter(siteId, personKeys, options.unsitedOrders === true);
  const [people, consentRecords, deadLetters, orders, firstEvents] = await Promise.all([
    all('people', ['id']),
    all('consent_records', ['recorded_at', 'id']),
    all('dead_letters', ['failed_at', 'id']),
    ordersFilter === undefined
      ? Promise.resolve([])
      : directus.readAll<Row>('orders', { filter: ordersFilter, sort: ['created_at', 'id'] }),
    eventsAfter(undefined),
  ]);
  async function* moreEvents(): AsyncGenerator<Row[]> {
    let page = firstEvents;
    let boundary: { at: string; read: number } | undefined;
    while (page.length === pageSize) {
      const at = page[page.length - 1]?.received_at;
      if (typeof at !== 'string') return;
      const read = page.filter((row) => row.received_at === at).length;
      // A page all at one time adds to the rows read before at that time.
      boundary = { at, read: boundary?.at === at ? boundary.read + read : read };
      page = await eventsAfter(boundary);
      if (page.length > 0) yield page;
    }
  }
  // `orders` before the events: they must stay the answer's last key (streamAccessAnswer).
  return { personKeys, people, consentRecords, deadLetters, orders, firstEvents, moreEvents };
}

/**
 * `document` as JSON with the person's events streamed into it as `downstream.events`
 * (the last key), page by page. If Directus fails part-way the stream errors, so the
 * answer breaks off as invalid JSON: never a part passed off as the whole.
 */
export function streamAccessAnswer(
  document: Record<string, unknown>,
  downstream: DownstreamHoldings,
  onError: (e: unknown) => void,
): ReadableStream<Uint8Array> {
  const { firstEvents, moreEvents, ...rest } = downstream;
  const whole = JSON.stringify({ ...document, downstream: { ...rest, events: [] } });
  const close = ']}}';
  // `downstream` is the document's last key and `events` its last: the events go just before `close`.
  if (!whole.endsWith(`"events":[${close}`)) throw new Error('downstream must be the last key of the answer');
  const open = whole.slice(0, -close.length);
  const encoder = new TextEncoder();
  const rows = (page: Row[]) => page.map((row) => JSON.stringify(row)).join(',');
  const pages = moreEvents();
  let any = firstEvents.length > 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(open + rows(firstEvents)));
    },
    async pull(controller) {
      try {
        const next = await pages.next();
        if (next.done) {
          controller.enqueue(encoder.encode(close));
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode((any ? ',' : '') + rows(next.value)));
        any = true;
      } catch (e) {
        onError(e);
        controller.error(e);
      }
    },
  });
}
