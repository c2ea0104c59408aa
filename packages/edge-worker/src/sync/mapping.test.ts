/** The queue-message → Directus-row mapping, without Directus. */
import type { ConsentMessage, EventMessage } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import {
  consentRow,
  deadLetterRow,
  erasedPersonKeys,
  eventRow,
  latestProfiles,
  newerSnapshot,
  personOrdersFilter,
  personRow,
  profileInputFromRow,
  RETRIES_EXHAUSTED,
  retryDelaySeconds,
  rowProblem,
} from './mapping.ts';

const event: EventMessage = {
  kind: 'event',
  siteId: 'demo',
  personId: 'user:u-1',
  event: {
    id: '01K8ZJ3Q7W8X9Y0Z1A2B3C4D5E',
    type: 'track',
    name: 'cart.item.added',
    timestamp: '2026-11-26T10:00:00.000Z',
    anonymousId: 'a-1',
    userId: 'u-1',
    userIdSignature: 'a'.repeat(64),
    sessionId: 's-1',
    properties: { productId: 'p-1', category: 'outdoor' },
    context: {
      page: { path: '/p/1' },
      screen: { width: 390, height: 844 },
      consent: {
        categories: { necessary: true, analytics: true, personalization: true },
        policyVersion: '1',
      },
    },
    schemaVersion: 1,
  },
  enrichment: {
    receivedAt: '2026-11-26T10:00:01.000Z',
    correctedTimestamp: '2026-11-26T10:00:00.500Z',
    country: 'DE',
  },
  purposes: ['analytics', 'personalization'],
};

describe('eventRow', () => {
  it('keys the row by the event id and keeps only the context subset, never the signature', () => {
    const row = eventRow(event);
    expect(row).toMatchObject({
      id: event.event.id,
      site_id: 'demo',
      person_key: 'user:u-1',
      name: 'cart.item.added',
      user_id: 'u-1',
      session_id: 's-1',
      received_at: '2026-11-26T10:00:01.000Z',
      corrected_timestamp: '2026-11-26T10:00:00.500Z',
      enrichment: { country: 'DE' },
    });
    expect(row.context).toEqual({ page: { path: '/p/1' }, consent: event.event.context?.consent });
    expect(JSON.stringify(row)).not.toContain('aaaaaaaa');
  });

  it("fills in the page's path, query and campaign from the URL the browser tag sends alone", () => {
    const url = 'https://shop.test/p/1?utm_source=news&utm_medium=email';
    const row = eventRow({ ...event, event: { ...event.event, context: { page: { url, title: 'Wok' } } } });
    expect(row.context).toEqual({
      page: { url, title: 'Wok', path: '/p/1', search: '?utm_source=news&utm_medium=email' },
      campaign: { source: 'news', medium: 'email' },
    });
  });

  it('round-trips into the same profile input the live path used', () => {
    const input = profileInputFromRow(eventRow(event));
    const { userIdSignature: _sig, context, ...rest } = event.event;
    expect(input.event).toEqual({ ...rest, context: { page: context?.page, consent: context?.consent } });
    expect(input.enrichment).toEqual(event.enrichment);
    expect(input.personalization).toBe(true);
    expect(input.consent?.categories).toMatchObject({
      analytics: true,
      personalization: true,
      marketing: false,
    });
  });
});

describe('profiles', () => {
  const profile = (version: number) => ({
    kind: 'profile' as const,
    siteId: 'demo',
    personId: 'anon:a',
    version,
    profile: {
      anonymousIds: ['a'],
      traits: {},
      interests: {},
      segments: [`s${version}`],
      counters: {},
      firstSeen: 'x',
      lastSeen: 'y',
    },
  });

  it('keeps the highest version per person', () => {
    const latest = latestProfiles([profile(3), profile(7), profile(5)]);
    expect([...latest.values()].map((p) => p.version)).toEqual([7]);
    expect(personRow(profile(7))).toMatchObject({ id: 'demo:anon:a', version: 7, segments: ['s7'] });
  });

  it('takes a later life of the person over a higher version of an earlier one', () => {
    // Seen in January, wiped by retention; back in June, numbered from 1 again.
    const before = { version: 57, first_seen: '2026-01-02T00:00:00Z', last_seen: '2026-01-20T00:00:00Z' };
    const back = { version: 1, first_seen: '2026-06-01T00:00:00Z', last_seen: '2026-06-01T00:05:00Z' };
    expect(newerSnapshot(back, before)).toBe(true);
    expect(newerSnapshot(before, back)).toBe(false);
    // Within one life the version decides, a merge moving first seen earlier included.
    const merged = { version: 58, first_seen: '2025-12-01T00:00:00Z', last_seen: '2026-01-21T00:00:00Z' };
    expect(newerSnapshot(merged, before)).toBe(true);
    expect(newerSnapshot(before, merged)).toBe(false);
    // A database keeping times to the second: a late v56 of the same life, first seen within
    // that second of the stored row's last activity, is no later life.
    const late = {
      version: 56,
      first_seen: '2026-01-20T00:00:00.300Z',
      last_seen: '2026-01-20T00:00:00.300Z',
    };
    expect(newerSnapshot(late, before)).toBe(false);
    // A stored row without times falls back to the version.
    expect(newerSnapshot(back, { version: 57, first_seen: null, last_seen: null })).toBe(false);
    const inBatch = [
      {
        ...profile(57),
        profile: { ...profile(57).profile, firstSeen: before.first_seen, lastSeen: before.last_seen },
      },
      {
        ...profile(1),
        profile: { ...profile(1).profile, firstSeen: back.first_seen, lastSeen: back.last_seen },
      },
    ];
    expect([...latestProfiles(inBatch).values()].map((p) => p.version)).toEqual([1]);
  });
});

describe('consent and erasure', () => {
  it('keys a consent record by its event id', () => {
    const row = consentRow({
      kind: 'consent',
      siteId: 'demo',
      personId: 'anon:a',
      eventId: 'E1',
      consent: { categories: { analytics: true }, policyVersion: '2' },
      source: 'banner',
      recordedAt: '2026-11-26T10:00:00.000Z',
    });
    expect(row).toEqual({
      id: 'E1',
      site_id: 'demo',
      person_key: 'anon:a',
      categories: { analytics: true },
      // A message queued before the answers were sent: none to show.
      claimed: null,
      policy_version: '2',
      source: 'banner',
      recorded_at: '2026-11-26T10:00:00.000Z',
      // A message queued before chosenAt was sent: the receive time stands in.
      chosen_at: '2026-11-26T10:00:00.000Z',
      // And before gpc was: unknown, not "no GPC".
      gpc: null,
    });
  });

  it('keeps whether Global Privacy Control was in force for the choice', () => {
    const message: ConsentMessage = {
      kind: 'consent',
      siteId: 'demo',
      personId: 'anon:a',
      eventId: 'E3',
      consent: { categories: { marketing: false }, policyVersion: '2' },
      source: 'banner',
      recordedAt: '2026-11-26T10:00:00.000Z',
    };
    expect(consentRow({ ...message, gpc: true }).gpc).toBe(true);
    expect(consentRow({ ...message, gpc: false }).gpc).toBe(false);
  });

  it('keeps the answers as the person gave them beside what the edge enforced', () => {
    const row = consentRow({
      kind: 'consent',
      siteId: 'demo',
      personId: 'anon:a',
      eventId: 'E4',
      consent: { categories: { analytics: true, marketing: false }, policyVersion: '1' },
      claimed: { analytics: true, marketing: true, experiments: true },
      source: 'banner',
      recordedAt: '2026-11-26T10:00:00.000Z',
    });
    expect(row).toMatchObject({
      categories: { analytics: true, marketing: false },
      claimed: { analytics: true, marketing: true, experiments: true },
    });
  });

  it('keeps when the person chose apart from when the Worker received it', () => {
    const row = consentRow({
      kind: 'consent',
      siteId: 'demo',
      personId: 'anon:a',
      eventId: 'E2',
      consent: { categories: { analytics: true }, policyVersion: '2' },
      source: 'banner',
      recordedAt: '2026-11-26T10:00:00.000Z',
      chosenAt: '2026-11-26T09:00:00.000Z',
    });
    expect(row).toMatchObject({
      recorded_at: '2026-11-26T10:00:00.000Z',
      chosen_at: '2026-11-26T09:00:00.000Z',
    });
  });

  it('erases every key a person was known by', () => {
    expect(
      erasedPersonKeys({
        kind: 'erasure',
        siteId: 'demo',
        personId: 'user:u',
        anonymousIds: ['a', 'b'],
        userId: 'u',
        requestedAt: 'x',
      }).sort(),
    ).toEqual(['anon:a', 'anon:b', 'user:u']);
  });

  it("finds a person's orders of the site by the user and browser ids their keys carry", () => {
    // By a browser, only orders placed signed out: another account's order on it is not theirs.
    const signedOut = (browsers: string[]) => ({
      _and: [{ anonymous_id: { _in: browsers } }, { user_id: { _empty: true } }],
    });
    expect(personOrdersFilter('demo', ['user:u', 'anon:a', 'anon:b'])).toEqual({
      _and: [{ site_id: { _eq: 'demo' } }, { _or: [{ user_id: { _in: ['u'] } }, signedOut(['a', 'b'])] }],
    });
    // A browser alone: no empty `_in` for user ids.
    expect(personOrdersFilter('demo', ['anon:a'])).toEqual({
      _and: [{ site_id: { _eq: 'demo' } }, { _or: [signedOut(['a'])] }],
    });
    expect(personOrdersFilter('demo', [])).toBeUndefined();
    // Orders without a site, when they can only be this site's (it is the Worker's one site).
    expect(personOrdersFilter('demo', ['user:u'], true)).toEqual({
      _and: [
        { _or: [{ site_id: { _eq: 'demo' } }, { site_id: { _empty: true } }] },
        { _or: [{ user_id: { _in: ['u'] } }] },
      ],
    });
  });

  it('names a message whose dates Directus could not store', () => {
    expect(rowProblem(event)).toBeUndefined();
    expect(rowProblem({ ...event, enrichment: { ...event.enrichment, receivedAt: 'soon' } })).toBe(
      'enrichment.receivedAt is not a date-time',
    );
  });
});

describe('deadLetterRow', () => {
  const now = Date.parse('2026-11-27T03:00:00.000Z');

  it('a letter of the sync keeps its reason, attempts and time, and names the person of the original', () => {
    const letter = {
      reason: 'bad date',
      messageId: 'm-1',
      attempts: 3,
      failedAt: '2026-11-27T02:00:00.000Z',
      body: event,
    };
    expect(deadLetterRow({ id: 'dlq-1', body: letter }, now)).toEqual({
      id: 'dlq-1',
      site_id: 'demo',
      person_key: 'user:u-1',
      reason: 'bad date',
      attempts: 3,
      failed_at: '2026-11-27T02:00:00.000Z',
      message: event,
    });
  });

  it('a message the queue gave up on is kept whole, with the reason said for it', () => {
    const row = deadLetterRow({ id: 'dlq-2', body: event }, now);
    expect(row).toMatchObject({ reason: RETRIES_EXHAUSTED, attempts: null, message: event });
    expect(row.failed_at).toBe('2026-11-27T03:00:00.000Z');
  });

  it('a body naming nobody readable, or not JSON, is still kept', () => {
    const forged = { kind: 'event', siteId: 's'.repeat(300), personId: `anon:${'x'.repeat(400)}` };
    expect(deadLetterRow({ id: 'dlq-3', body: forged }, now)).toMatchObject({
      site_id: null,
      person_key: null,
    });
    expect(deadLetterRow({ id: 'dlq-4', body: { personId: 'someone' } }, now).person_key).toBeNull();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(deadLetterRow({ id: 'dlq-5', body: cyclic }, now).message).toBe('[object Object]');
    expect(deadLetterRow({ id: 'dlq-6', body: 10n }, now).message).toBe('10');
  });
});

describe('retryDelaySeconds', () => {
  it('grows with each attempt and is capped', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map(retryDelaySeconds);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1] ?? 0);
    expect(retryDelaySeconds(50)).toBe(900);
    expect(retryDelaySeconds(0)).toBe(5);
  });
});
