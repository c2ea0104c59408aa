/**
 * The lift report over rows of the event log (pure logic, and the reads and writes against
 * a small in-memory Directus; the real one is in test/directus/lift.test.ts): rows map to
 * what measureLift reads, a window counts the people exposed in it and their conversions in
 * it, the log is read page by page up to a bound, and a report names no person.
 */

import { env } from 'cloudflare:workers';
import type { EventMessage } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import { directusClient } from '../directus/client.ts';
import { eventRow } from '../sync/mapping.ts';
import { ATTRIBUTION_WINDOW_MS } from './lift.ts';
import {
  type EventLogRow,
  type LiftReportRow,
  liftRows,
  liftWindow,
  readLiftEvents,
  reportLift,
  type WindowedEvent,
  windowedEventOf,
} from './lift-report.ts';

const DAY = 24 * 3_600_000;
const NOW = Date.parse('2026-11-28T03:17:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** A decision.served row as the sync writes it (eventRow), received `at`. */
function decisionRow(person: string, at: number, holdout: boolean, experiment = 'exp-a'): EventLogRow {
  const message: EventMessage = {
    kind: 'event',
    siteId: 'demo',
    personId: person,
    event: {
      id: `d-${person}-${at}`,
      type: 'track',
      name: 'decision.served',
      timestamp: iso(at),
      anonymousId: person.slice(5),
      properties: {
        decisionId: `d-${person}-${at}`,
        slot: 'hero',
        variant: 'v1',
        holdout,
        experiment,
        personalized: !holdout,
        eligible: true,
        items: ['p-secret-product'],
      },
      schemaVersion: 1,
    },
    enrichment: { receivedAt: iso(at), correctedTimestamp: iso(at) },
    purposes: ['analytics'],
  };
  return eventRow(message);
}

function conversionRow(person: string, at: number, name = 'order.completed'): EventLogRow {
  return {
    person_key: person,
    name,
    timestamp: iso(at),
    corrected_timestamp: iso(at),
    received_at: iso(at),
    properties: { orderId: 'o-secret', total: 99 },
  };
}

const windowed = (rows: EventLogRow[]): WindowedEvent[] =>
  rows.map(windowedEventOf).filter((e): e is WindowedEvent => e !== undefined);

describe('an event-log row as the lift report reads it', () => {
  it('keeps who, what, when (the corrected time) and only the decision properties measureLift reads', () => {
    const row = { ...decisionRow('anon:a', NOW, true), corrected_timestamp: iso(NOW - 5_000) };
    expect(windowedEventOf(row)).toEqual({
      event: {
        personId: 'anon:a',
        name: 'decision.served',
        timestamp: iso(NOW - 5_000),
        properties: { decisionId: `d-anon:a-${NOW}`, experiment: 'exp-a', holdout: true, eligible: true },
      },
      receivedAt: NOW,
    });
  });

  it('is left out without a person, a name or a time', () => {
    const row = conversionRow('anon:a', NOW);
    expect(windowedEventOf({ ...row, person_key: null })).toBeUndefined();
    expect(windowedEventOf({ ...row, name: undefined })).toBeUndefined();
    expect(windowedEventOf({ ...row, received_at: 'never' })).toBeUndefined();
    expect(windowedEventOf({ ...row, timestamp: null, corrected_timestamp: null })).toBeUndefined();
    // A row written before corrected times were kept uses the device's time.
    expect(windowedEventOf({ ...row, corrected_timestamp: null })?.event.timestamp).toBe(iso(NOW));
  });
});

describe('the report rows of a window', () => {
  const window = liftWindow(NOW, 28);
  const run = { eventsRead: 99, truncated: false, computedAt: iso(NOW) };

  it('counts the people exposed in the window and their conversions in it, per experiment', () => {
    const inside = window.start + DAY;
    const rows = liftRows(
      'demo',
      windowed([
        // Treated: t1 converts twice, t2 not at all, t3 after the attribution window.
        decisionRow('anon:t1', inside, false),
        conversionRow('anon:t1', inside + 1_000),
        conversionRow('anon:t1', inside + 2_000, 'cart.item.added'),
        decisionRow('anon:t2', inside, false),
        decisionRow('anon:t3', inside, false),
        conversionRow('anon:t3', inside + ATTRIBUTION_WINDOW_MS + 1_000),
        // Held out: h1 converts, h2 does not.
        decisionRow('anon:h1', inside, true),
        conversionRow('anon:h1', inside + 1_000),
        decisionRow('anon:h2', inside, true),
        // Exposed only before the window: not counted, nor its conversion in the window.
        decisionRow('anon:before', window.start - DAY, false),
        conversionRow('anon:before', window.start + 1_000),
        // Another experiment is its own row.
        decisionRow('anon:b1', inside, false, 'exp-b'),
      ]),
      window,
      run,
    );
    expect(rows.map((r) => r.id)).toEqual(['demo:exp-a:28d:2026-11-28', 'demo:exp-b:28d:2026-11-28']);
    expect(rows[0]).toEqual({
      id: 'demo:exp-a:28d:2026-11-28',
      site_id: 'demo',
      experiment: 'exp-a',
      window_start: '2026-10-31T03:17:00.000Z',
      window_end: '2026-11-28T03:17:00.000Z',
      treatment_people: 3,
      treatment_converters: 1,
      treatment_conversions: 2,
      treatment_rate: 1 / 3,
      holdout_people: 2,
      holdout_converters: 1,
      holdout_conversions: 1,
      holdout_rate: 0.5,
      lift: (1 / 3 - 0.5) / 0.5,
      // 1 of 3 against 1 of 2: anything from −65 to +45 points (scipy, see lift-stats.test.ts).
      difference_low: expect.closeTo(-0.6548292253357504, 12),
      difference_high: expect.closeTo(0.44578123286192456, 12),
      lift_low: expect.closeTo(-0.9197387362403178, 12),
      lift_high: expect.closeTo(4.537471298423576, 12),
      significant: false,
      events_read: 99,
      truncated: false,
      computed_at: iso(NOW),
    } satisfies LiftReportRow);
    // Nobody held out in exp-b: no lift, no interval, nothing judged.
    expect(rows[1]).toMatchObject({
      treatment_people: 1,
      holdout_people: 0,
      lift: null,
      difference_low: null,
      difference_high: null,
      lift_low: null,
      lift_high: null,
      significant: null,
    });
  });

  it("attributes a conversion early in the window to the person's decision just before it", () => {
    const rows = liftRows(
      'demo',
      windowed([
        decisionRow('anon:t1', window.start - DAY, false),
        conversionRow('anon:t1', window.start + 1_000),
        decisionRow('anon:t1', window.start + DAY, false),
        decisionRow('anon:h1', window.start + DAY, true),
      ]),
      window,
      run,
    );
    expect(rows[0]).toMatchObject({ treatment_people: 1, treatment_converters: 1, holdout_people: 1 });
  });

  it('counts a browser exposed before sign-in and the person who then bought as one person', () => {
    const inside = window.start + DAY;
    // The order after sign-in is the person's (user:ada), from the browser the decision went to.
    const signedInOrder = {
      ...conversionRow('user:ada', inside + 60_000),
      anonymous_id: 's',
      user_id: 'ada',
    };
    // A shared computer: two people signed in on browser `shared`; its anonymous events stay its own.
    const first = { ...conversionRow('user:bo', inside + 60_000), anonymous_id: 'shared', user_id: 'bo' };
    const second = { ...conversionRow('user:cy', inside + 60_000), anonymous_id: 'shared', user_id: 'cy' };
    const rows = liftRows(
      'demo',
      windowed([
        decisionRow('anon:s', inside, false),
        signedInOrder,
        decisionRow('anon:shared', inside, false),
        first,
        second,
        decisionRow('anon:h1', inside, true),
      ]),
      window,
      run,
    );
    expect(rows[0]).toMatchObject({
      treatment_people: 2,
      treatment_converters: 1,
      treatment_conversions: 1,
      holdout_people: 1,
    });
  });

  it('names no person, event or property value', () => {
    const inside = window.start + DAY;
    const rows = liftRows(
      'demo',
      windowed([
        decisionRow('anon:secret-person', inside, false),
        conversionRow('anon:secret-person', inside + 1),
      ]),
      window,
      run,
    );
    const text = JSON.stringify(rows);
    expect(rows).toHaveLength(1);
    for (const secret of ['secret-person', 'p-secret-product', 'o-secret', 'd-anon'])
      expect(text).not.toContain(secret);
  });
});

/** An in-memory Directus answering the reads and writes of a lift report, with the requests it saw. */
function fakeDirectus(events: EventLogRow[]) {
  const reports = new Map<string, Record<string, unknown>>();
  const requests: string[] = [];
  const matches = (row: Record<string, unknown>, filter: Record<string, unknown>): boolean =>
    Object.entries(filter).every(([field, condition]) => {
      if (field === '_and') return (condition as Record<string, unknown>[]).every((c) => matches(row, c));
      const value = row[field];
      return Object.entries(condition as Record<string, unknown>).every(([op, operand]) => {
        if (op === '_eq') return value === operand;
        if (op === '_in') return (operand as unknown[]).includes(value);
        if (op === '_gte') return String(value) >= String(operand);
        if (op === '_lt') return String(value) < String(operand);
        throw new Error(`the fake Directus has no ${op}`);
      });
    });
  const json = (data: unknown) => Response.json({ data });
  const fetchFake: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const method = init?.method ?? 'GET';
    requests.push(`${method} ${url.pathname}`);
    const filter = JSON.parse(url.searchParams.get('filter') ?? '{}') as Record<string, unknown>;
    if (url.pathname === '/items/events') {
      // Sorted by received_at then id, as asked (the fixture's ids follow its order).
      const all = events
        .map((row, i) => ({ ...row, id: String(i).padStart(6, '0') }) as Record<string, unknown>)
        .filter((row) => matches({ site_id: 'demo', ...row }, filter))
        .sort((a, b) =>
          String(a.received_at) < String(b.received_at) ? -1 : a.received_at === b.received_at ? 0 : 1,
        );
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      return json(all.slice(offset, offset + limit));
    }
    if (url.pathname === '/items/lift_reports') {
      const body =
        init?.body === undefined ? [] : (JSON.parse(String(init.body)) as Record<string, unknown>[]);
      if (method === 'GET') return json([...reports.values()].filter((r) => matches(r, filter)));
      for (const row of body) reports.set(String(row.id), { ...reports.get(String(row.id)), ...row });
      return json(body.map((r) => ({ id: r.id })));
    }
    return new Response('not found', { status: 404 });
  };
  return {
    client: directusClient({ url: 'http://directus.fake', token: 't', fetch: fetchFake }),
    reports,
    requests,
  };
}

describe('reading the log and writing the report', () => {
  const window = liftWindow(NOW, 28);
  const inside = window.start + DAY;

  it('reads every page, also when a page ends among rows received at the same time', async () => {
    // Seven treated people decided at the very same time: pages of three cut through them.
    const rows = Array.from({ length: 7 }, (_, i) => decisionRow(`anon:t${i}`, inside, false));
    rows.push(decisionRow('anon:h', inside + 1, true), conversionRow('anon:t0', inside + 2));
    const directus = fakeDirectus(rows);
    const read = await readLiftEvents(directus.client, 'demo', window.start, window.end, { pageSize: 3 });
    expect(read).toMatchObject({ read: 9, truncated: false });
    expect(new Set(read.events.map((e) => `${e.event.name} ${e.event.personId}`)).size).toBe(9);
    expect(directus.requests.filter((r) => r === 'GET /items/events')).toHaveLength(4);
  });

  it('stops at its bound and says so', async () => {
    const rows = Array.from({ length: 10 }, (_, i) => decisionRow(`anon:t${i}`, inside + i, false));
    const directus = fakeDirectus(rows);
    const read = await readLiftEvents(directus.client, 'demo', window.start, window.end, {
      max: 4,
      pageSize: 3,
    });
    expect(read).toMatchObject({ read: 4, truncated: true });
    expect(read.events.map((e) => e.event.personId)).toEqual(['anon:t0', 'anon:t1', 'anon:t2', 'anon:t3']);
    // A window holding exactly the bound is whole.
    const exactly = await readLiftEvents(
      fakeDirectus(rows.slice(0, 6)).client,
      'demo',
      window.start,
      window.end,
      {
        max: 6,
        pageSize: 3,
      },
    );
    expect(exactly).toMatchObject({ read: 6, truncated: false });
  });

  it('writes one row per experiment and day, and replaces it when run again that day', async () => {
    const rows = [
      decisionRow('anon:t', inside, false),
      decisionRow('anon:h', inside, true),
      conversionRow('anon:h', inside + 1),
      // Outside the window and its look-back: never read.
      conversionRow('anon:t', window.end + 1),
    ];
    const directus = fakeDirectus(rows);
    const first = await reportLift(env, 'demo', { now: NOW, directus: directus.client });
    expect(first).toMatchObject({ siteId: 'demo', days: 28, eventsRead: 3, truncated: false });
    expect([...directus.reports.keys()]).toEqual(['demo:exp-a:28d:2026-11-28']);
    expect(directus.reports.get('demo:exp-a:28d:2026-11-28')).toMatchObject({
      treatment_people: 1,
      holdout_rate: 1,
    });

    rows.push(conversionRow('anon:t', inside + 2));
    const again = await reportLift(env, 'demo', {
      now: NOW + 3_600_000,
      days: 28,
      directus: directus.client,
    });
    expect(again.reports[0]?.treatment_converters).toBe(1);
    expect(directus.reports.size).toBe(1);
    expect(directus.reports.get('demo:exp-a:28d:2026-11-28')).toMatchObject({ treatment_rate: 1, lift: 0 });
    expect(directus.requests).toContain('PATCH /items/lift_reports');
  });

  it('reads the sign-ins, so a person exposed on two browsers is one person, in the group of their first exposure', async () => {
    // Held out on their first browser, where they then signed in (identify: no decision or
    // conversion after it); exposed on a second browser in its own group, and bought there.
    const signIn: EventLogRow = {
      ...conversionRow('user:ada', inside + 1_000, 'user.identified'),
      anonymous_id: 'first',
      user_id: 'ada',
    };
    const order: EventLogRow = {
      ...conversionRow('user:ada', inside + 3_000),
      anonymous_id: 'second',
      user_id: 'ada',
    };
    const directus = fakeDirectus([
      decisionRow('anon:first', inside, true),
      signIn,
      decisionRow('anon:second', inside + 2_000, false),
      order,
    ]);
    const { reports } = await reportLift(env, 'demo', { now: NOW, directus: directus.client });
    // Before, the sign-in was not read: anon:first held out, and user:ada a treated converter.
    expect(reports[0]).toMatchObject({
      treatment_people: 0,
      holdout_people: 1,
      holdout_converters: 1,
      events_read: 4,
    });
  });

  it('does not count an order refunded in full (at once, or in partial refunds reaching its total) as a conversion', async () => {
    const order = (person: string, orderId: string, at: number, total: number): EventLogRow => ({
      ...conversionRow(person, at),
      properties: { orderId, total },
    });
    const refund = (person: string, orderId: string, at: number, refund: Record<string, unknown> = {}) => ({
      ...conversionRow(person, at, 'order.refunded'),
      properties: { orderId, ...refund },
    });
    const directus = fakeDirectus([
      // t1's order comes back whole (no total): its cart add still converts.
      decisionRow('anon:t1', inside, false),
      conversionRow('anon:t1', inside + 1_000, 'cart.item.added'),
      order('anon:t1', 'o-1', inside + 2_000, 120),
      refund('anon:t1', 'o-1', inside + 3 * DAY),
      // t2 returns the items one at a time, 40 then 60 (the first sent twice): the whole order.
      decisionRow('anon:t2', inside, false),
      order('anon:t2', 'o-2', inside + 1_000, 100),
      refund('anon:t2', 'o-2', inside + DAY, { refundId: 'r-1', total: 40 }),
      refund('anon:t2', 'o-2', inside + DAY + 1, { refundId: 'r-1', total: 40 }),
      refund('anon:t2', 'o-2', inside + 2 * DAY, { refundId: 'r-2', total: 60 }),
      // t3 returns one item of three: still a conversion.
      decisionRow('anon:t3', inside, false),
      order('anon:t3', 'o-3', inside + 1_000, 100),
      refund('anon:t3', 'o-3', inside + DAY, { refundId: 'r-3', total: 30 }),
      // t4's order id refunded for someone else: t4's order stands.
      decisionRow('anon:t4', inside, false),
      order('anon:t4', 'o-4', inside + 1_000, 100),
      refund('anon:other', 'o-4', inside + DAY),
      // t5's second refund without a refundId is the first again (as the ProfileDO takes it): 40 of 100.
      decisionRow('anon:t5', inside, false),
      order('anon:t5', 'o-5', inside + 1_000, 100),
      refund('anon:t5', 'o-5', inside + DAY, { total: 40 }),
      refund('anon:t5', 'o-5', inside + 2 * DAY, { total: 60 }),
      // h1's order is refunded in full by its total: no converter held out.
      decisionRow('anon:h1', inside, true),
      order('anon:h1', 'o-h', inside + 1_000, 50),
      refund('anon:h1', 'o-h', inside + DAY, { total: 50 }),
    ]);
    const { reports } = await reportLift(env, 'demo', { now: NOW, directus: directus.client });
    expect(reports[0]).toMatchObject({
      treatment_people: 5,
      treatment_converters: 4,
      treatment_conversions: 4,
      holdout_people: 1,
      holdout_converters: 0,
      holdout_conversions: 0,
    });
  });

  it('refuses a window of no days or more than 90', async () => {
    const directus = fakeDirectus([]);
    for (const days of [0, 91, 1.5])
      await expect(reportLift(env, 'demo', { days, directus: directus.client })).rejects.toThrow(RangeError);
  });
});
