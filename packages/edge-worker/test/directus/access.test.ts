/**
 * Access requests against a real Directus: `GET /v1/people/:id` answers with what the edge
 * holds and what Directus holds, under every key the person was known by; erasure deletes
 * under the same keys.
 */

import { describe, expect, it } from 'vitest';
import {
  anonId,
  collect,
  consentFor,
  makeEvent,
  people,
  productView,
  signed,
  useRecordedQueue,
} from '../../src/ingest/test-support.ts';
import {
  consentMessage,
  consume,
  deliveries,
  erasureMessage,
  eventsMessage,
  profileMessage,
  rows,
  syncQueued,
  uniqueId,
} from './support.ts';

const queue = useRecordedQueue();

/** Delivers what the Worker queued so far to the real consumer, as the queue would. */
const sync = () => syncQueued(queue.messages);

interface Access {
  profile?: { anonymousIds: string[] };
  downstream?: {
    personKeys: string[];
    people: { person_key: string }[];
    consentRecords: { id: string; person_key: string }[];
    events: { id: string; person_key: string }[];
    deadLetters: unknown[];
  };
}

describe('access to everything held about a person', () => {
  it('includes the Directus rows of the person and of the browsers merged into them', async () => {
    const a = anonId('access');
    const userId = `u-${anonId()}`;
    const choice = makeEvent(a, 'consent.updated', {
      properties: { ...consentFor('analytics', 'personalization'), source: 'banner' },
    });
    const views = [productView(a, 'p1', 'shoes'), productView(a, 'p2', 'shoes')];
    await collect([choice, ...views]);
    await sync();
    const signIn = makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed(userId) });
    await collect([signIn]);
    await sync();

    const res = await people(`user:${userId}`, 'GET');
    expect(res.status).toBe(200);
    const held = (await res.json()) as Access;
    expect(held.profile?.anonymousIds).toEqual([a]);
    expect(held.downstream?.personKeys.toSorted()).toEqual([`anon:${a}`, `user:${userId}`].toSorted());
    // The browser's events before the sign-in (stored under its own key) and the sign-in itself.
    expect(held.downstream?.events.map((e) => e.id).toSorted()).toEqual(
      [choice, ...views, signIn].map((e) => e.id).toSorted(),
    );
    // The proof of the choice.
    expect(held.downstream?.consentRecords.map((r) => r.id)).toEqual([choice.id]);
    expect(held.downstream?.people.map((p) => p.person_key)).toContain(`user:${userId}`);

    // Asked by the browser's key: the browser is the person's now, and so is the answer.
    const viaBrowser = (await (await people(`anon:${a}`, 'GET')).json()) as Access;
    expect(viaBrowser.downstream?.personKeys).toContain(`user:${userId}`);
    expect(viaBrowser.downstream?.events.map((e) => e.id)).toContain(signIn.id);
  });

  it('covers the browsers Directus recorded for a person the edge no longer knows, and so does erasure', async () => {
    const userId = uniqueId('access-recorded');
    const person = `user:${userId}`;
    const browser = `anon:${uniqueId('access-browser')}`;
    // Directus's people row names the browser; the edge holds nothing about either.
    const snapshot = profileMessage(person, 3, 'browsers');
    snapshot.profile.anonymousIds = [browser.slice('anon:'.length)];
    await consume(deliveries([snapshot, eventsMessage(browser, 2)]));

    const held = (await (await people(person, 'GET')).json()) as Access;
    expect(held.downstream?.personKeys).toContain(browser);
    expect(held.downstream?.events).toHaveLength(2);

    await consume(deliveries([erasureMessage(person)]));
    expect(await rows('events', { person_key: { _eq: browser } })).toEqual([]);
    expect((await people(person, 'GET')).status).toBe(404);
  });

  it('answers for a person Directus alone holds, and 404 only when nobody holds anything', async () => {
    const person = `anon:${uniqueId('access-downstream')}`;
    await consume(deliveries([eventsMessage(person, 2)]));
    const res = await people(person, 'GET');
    expect(res.status).toBe(200);
    const held = (await res.json()) as Access;
    expect(held.profile).toBeUndefined();
    expect(held.downstream?.events).toHaveLength(2);

    expect((await people(`anon:${uniqueId('nobody')}`, 'GET')).status).toBe(404);
  });

  /** Syncs `count` events of a new person, receive time i ↦ `receivedAt(i)`; returns the person and the ids in receive order. */
  async function busyPerson(count: number, receivedAt: (message: number) => string) {
    const person = `anon:${uniqueId('access-busy')}`;
    const messages = Array.from({ length: Math.ceil(count / 100) }, (_, i) =>
      eventsMessage(person, Math.min(100, count - i * 100)),
    );
    for (const [i, m] of messages.entries())
      for (const e of m.events) e.enrichment.receivedAt = receivedAt(i);
    const ids = messages
      .flatMap((m) => m.events.map((e) => `${e.enrichment.receivedAt} ${e.event.id}`))
      .toSorted()
      .map((key) => key.split(' ')[1]);
    const result = await consume(deliveries(messages));
    expect(result.retryMessages).toEqual([]);
    return { person, ids };
  }

  async function streamedEventIds(person: string): Promise<string[]> {
    const res = await people(person, 'GET');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const held = (await res.json()) as Access;
    return held.downstream?.events.map((e) => e.id) ?? [];
  }

  it("streams every one of a busy person's events, page after page, each once and in order", async () => {
    // 1,234 events, two messages (200 events) per receive time: the pages of 500 end within
    // a time, so the next page passes over those of that time already read.
    const start = Date.now() - 60_000;
    const busy = await busyPerson(1234, (i) => new Date(start + Math.floor(i / 2)).toISOString());
    expect(await streamedEventIds(busy.person)).toEqual(busy.ids);
  }, 60_000);

  it('streams them all when more than a page of them were received at one time', async () => {
    const at = new Date(Date.now() - 60_000).toISOString();
    const busy = await busyPerson(1100, () => at);
    const ids = await streamedEventIds(busy.person);
    expect(ids).toHaveLength(1100);
    expect(ids).toEqual(busy.ids);
  }, 60_000);
});

describe('the proof of a choice in Directus', () => {
  it('says when the person chose: a grant flushed late from an offline device is the older choice, and not the one in force', async () => {
    const a = anonId('chosen');
    const withdrawal = makeEvent(a, 'consent.updated', {
      properties: { ...consentFor('analytics'), source: 'preferences' },
      consent: consentFor('analytics'),
    });
    const madeAt = new Date(Date.now() - 3_600_000).toISOString();
    const lateGrant = makeEvent(a, 'consent.updated', {
      timestamp: madeAt,
      properties: { ...consentFor('analytics', 'personalization', 'marketing'), source: 'banner' },
      consent: consentFor('analytics', 'personalization', 'marketing'),
    });
    await collect([withdrawal]);
    await sync();
    await collect([lateGrant]);
    await sync();

    const records = await rows<{ id: string; chosen_at: string; recorded_at: string }>('consent_records', {
      person_key: { _eq: `anon:${a}` },
    });
    const byId = new Map(records.map((r) => [r.id, r]));
    const grant = byId.get(lateGrant.id);
    const kept = byId.get(withdrawal.id);
    // Both are kept as proof; received later, the grant was made an hour earlier.
    expect(grant && kept).toBeTruthy();
    expect(Date.parse(grant?.recorded_at ?? '')).toBeGreaterThanOrEqual(Date.parse(kept?.recorded_at ?? ''));
    expect(Math.abs(Date.parse(grant?.chosen_at ?? '') - Date.parse(madeAt))).toBeLessThan(60_000);
    expect(Date.parse(grant?.chosen_at ?? '')).toBeLessThan(Date.parse(kept?.chosen_at ?? ''));
    // The person's row holds the withdrawal, the latest choice made.
    const [person] = await rows<{ consent: { categories: Record<string, boolean> } }>('people', {
      person_key: { _eq: `anon:${a}` },
    });
    expect(person?.consent.categories).toMatchObject({ personalization: false, marketing: false });
  });

  it("keeps the person's answers under an older policy beside what the edge granted, in the row and the access answer", async () => {
    // A tab opened before the marketer's last change sends the choice its banner showed: a
    // category since removed ("experiments") and the site's own categories as they were then.
    const a = anonId('older-policy');
    const answers = { necessary: true, analytics: true, personalization: false, experiments: true };
    const choice = makeEvent(a, 'consent.updated', {
      properties: { categories: answers, policyVersion: 'before-the-change', source: 'banner' },
      consent: { categories: answers, policyVersion: 'before-the-change' },
    });
    await collect([choice]);
    await sync();

    type Row = { id: string; categories: Record<string, boolean>; claimed: Record<string, boolean> | null };
    const [row] = await rows<Row & { policy_version: string }>('consent_records', {
      person_key: { _eq: `anon:${a}` },
    });
    expect(row).toMatchObject({ id: choice.id, policy_version: 'before-the-change', claimed: answers });
    expect(row?.categories).not.toHaveProperty('experiments');
    const held = (await (await people(`anon:${a}`, 'GET')).json()) as {
      downstream?: { consentRecords: Row[] };
    };
    expect(held.downstream?.consentRecords).toMatchObject([{ id: choice.id, claimed: answers }]);

    // A consent record queued before the answers were sent: none (empty), not "nothing granted".
    const before = `anon:${uniqueId('claimed-before')}`;
    await consume(deliveries([consentMessage(before)]));
    const [old] = await rows<Row>('consent_records', { person_key: { _eq: before } });
    expect(old?.claimed).toBeNull();
  });

  it('says when Global Privacy Control turned marketing off, in the row and the access answer; a record from before says nothing', async () => {
    const everything = (a: string) =>
      makeEvent(a, 'consent.updated', {
        properties: { ...consentFor('analytics', 'personalization', 'marketing'), source: 'banner' },
        consent: consentFor('analytics', 'personalization', 'marketing'),
      });
    const underGpc = anonId('gpc');
    const choice = everything(underGpc);
    await collect([choice], { headers: { 'sec-gpc': '1' } });
    const plain = anonId('no-gpc');
    await collect([everything(plain)]);
    await sync();

    type Row = { id: string; categories: Record<string, boolean>; gpc: boolean | null };
    const rowOf = async (a: string) =>
      (await rows<Row>('consent_records', { person_key: { _eq: `anon:${a}` } }))[0];
    expect(await rowOf(underGpc)).toMatchObject({
      id: choice.id,
      categories: { marketing: false },
      gpc: true,
    });
    expect(await rowOf(plain)).toMatchObject({ categories: { marketing: true }, gpc: false });

    // The access answer shows why, at the edge and in Directus.
    const held = (await (await people(`anon:${underGpc}`, 'GET')).json()) as {
      profile?: { consent?: { gpc?: boolean } };
      downstream?: { consentRecords: Row[] };
    };
    expect(held.profile?.consent?.gpc).toBe(true);
    expect(held.downstream?.consentRecords).toMatchObject([{ id: choice.id, gpc: true }]);

    // A consent record queued before the field was sent: unknown (empty), never "no GPC".
    const before = `anon:${uniqueId('gpc-before')}`;
    await consume(deliveries([consentMessage(before)]));
    const [old] = await rows<Row>('consent_records', { person_key: { _eq: before } });
    expect(old?.gpc).toBeNull();
  });
});
