/**
 * Consent per purpose beyond the request's gate: what reaches the marketing sink (promotions,
 * triggers), the profile and the queue follows the consent of each event, normalized against
 * the site's categories, on every path (browser collect, server key, Segment API); the
 * proof of a choice says when Global Privacy Control turned marketing off; and each queued
 * event names the choice it was collected under.
 */
import { env } from 'cloudflare:workers';
import { eventMessagesOf, QueueMessageSchema } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { withCategoryDisabled } from '../config/test-support.ts';
import { anonymousIdInGroup } from '../decide/fixtures/people.ts';
import { viewProfile } from '../profile/client.ts';
import {
  ADMIN_HEADERS,
  anonId,
  call,
  collect,
  consentFor,
  makeEvent,
  people,
  productView,
  SITE,
  segment,
  signed,
  useRecordedQueue,
} from './test-support.ts';

const queue = useRecordedQueue();

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

describe('marketing sink (triggers, promotions)', () => {
  it('an event accepted without marketing consent does not trigger a promotion, even when a later event of the batch grants marketing', async () => {
    const a = anonId();
    // The fixture rule `outdoor-accessories` offers a promo on a cart add of category outdoor.
    const add = makeEvent(a, 'cart.item.added', {
      properties: { productId: 'trail-jacket', category: 'outdoor' },
      consent: consentFor('analytics'),
    });
    const later = makeEvent(a, 'page.viewed', { consent: consentFor('analytics', 'marketing') });
    const res = await collect([add, later]);
    expect(await res.json()).toMatchObject({ accepted: 2 });
    const names = eventMessagesOf(queue.messages).map((m) => m.event.name);
    expect(names).toEqual(['cart.item.added', 'page.viewed']);
    // The same cart add with marketing granted still triggers its promotion.
    queue.messages.length = 0;
    const b = anonId();
    await collect([
      makeEvent(b, 'cart.item.added', {
        properties: { productId: 'trail-jacket', category: 'outdoor' },
        consent: consentFor('analytics', 'marketing'),
      }),
    ]);
    const promo = eventMessagesOf(queue.messages).find((m) => m.event.name === 'promo.offered');
    expect(promo?.purposes).toContain('marketing');
  });
});

/** A person who chose `categories` under `policyVersion`, signed in as `userId` (a fresh one by default, returned). */
async function personWhoChose(
  anonymousId: string,
  categories: Record<string, boolean>,
  policyVersion = '1',
  userId = `u-${anonId()}`,
): Promise<string> {
  await collect([
    makeEvent(anonymousId, 'consent.updated', {
      userId,
      userIdSignature: await signed(userId),
      properties: { categories, policyVersion },
      consent: null,
    }),
  ]);
  return userId;
}

describe('recorded consent after the site changed its categories', () => {
  it('a server event without consent reaches nothing until the person chooses again, and then not marketing once disabled', async () => {
    const a = anonId();
    const all = { analytics: true, personalization: true, marketing: true };
    // The person granted everything while marketing was offered; then a marketer disables it,
    // which is a new policy version: the SDK asks everyone again.
    const userId = await personWhoChose(a, all);
    const order = (id: string) =>
      segment('/v1/track', { userId, event: 'Order Completed', properties: { order_id: id, total: 5 } });
    await withCategoryDisabled(env, SITE, 'marketing', async () => {
      expect(await (await order('o1')).json()).toMatchObject({ accepted: 0, dropped: 1 });
      // They choose again on a page that still offered marketing (a cached one): it stays off.
      await personWhoChose(a, all, '1.no-marketing', userId);
      queue.messages.length = 0;
      expect(await (await order('o2')).json()).toMatchObject({ accepted: 1 });
      const sent = eventMessagesOf(queue.messages);
      expect(sent.map((m) => m.event.name)).toEqual(['order.completed']);
      expect(sent[0]?.purposes).not.toContain('marketing');
      // The browser path refuses it too: both paths must agree (a claim of the new version
      // granting marketing, from a page that still offered it).
      queue.messages.length = 0;
      await collect([
        makeEvent(a, 'page.viewed', {
          userId,
          userIdSignature: await signed(userId),
          consent: { categories: all, policyVersion: '1.no-marketing' },
        }),
      ]);
      expect(eventMessagesOf(queue.messages)[0]?.purposes).not.toContain('marketing');
    });
  });
});

describe('a browser’s choice under an earlier policy version', () => {
  it('grants nothing once the site serves a newer one: a tab opened before the change reaches neither the log, the profile nor marketing; a choice under the new version does', async () => {
    const a = anonId();
    await withCategoryDisabled(env, SITE, 'personalization', async () => {
      // A tab that read /v1/config before the marketer's change still stamps the old version.
      const view = productView(a, 'trail-jacket', 'outdoor');
      const res = await collect([view]);
      expect(await res.json()).toMatchObject({ accepted: 0, dropped: 1 });
      expect(eventMessagesOf(queue.messages)).toEqual([]);
      expect((await viewProfile(env, SITE, `anon:${a}`))?.interests ?? {}).toEqual({});
      // Asked again, the person chooses under the new version: their events count again.
      await collect([
        makeEvent(a, 'consent.updated', {
          properties: { categories: { analytics: true }, policyVersion: '1.no-personalization' },
          consent: null,
        }),
      ]);
      queue.messages.length = 0;
      const again = makeEvent(a, 'page.viewed', {
        consent: { categories: { necessary: true, analytics: true }, policyVersion: '1.no-personalization' },
      });
      expect(await (await collect([again])).json()).toMatchObject({ accepted: 1 });
      expect(eventMessagesOf(queue.messages).map((m) => [m.event.id, m.purposes])).toEqual([
        [again.id, ['analytics']],
      ]);
    });
  });
});

describe('recorded consent in the ProfileDO', () => {
  it('a server event without consent does not build the profile once the site disabled the personalization category', async () => {
    const a = anonId();
    const granted = { analytics: true, personalization: true, marketing: false };
    const userId = await personWhoChose(a, granted);
    await withCategoryDisabled(env, SITE, 'personalization', async () => {
      await personWhoChose(a, granted, '1.no-personalization', userId);
      const res = await segment('/v1/track', {
        userId,
        event: 'Product Viewed',
        properties: { product_id: 'trail-jacket', category: 'outdoor' },
      });
      expect(await res.json()).toMatchObject({ accepted: 1 });
      // Still in the event log (analytics stays granted), but no interest learned.
      expect(eventMessagesOf(queue.messages).map((m) => m.event.name)).toContain('product.viewed');
      const view = await viewProfile(env, SITE, `user:${userId}`);
      expect(view?.interests).toEqual({});
      expect(view?.recentActions.map((a) => a.name)).not.toContain('product.viewed');
    });
  });
});

describe('Segment consent claims', () => {
  it('an accepted event is queued as a message the consumer accepts, whatever category keys the claim has', async () => {
    const userId = `u-${anonId()}`;
    const categories: Record<string, boolean> = { '': true, analytics: true, ['k'.repeat(100)]: true };
    // Thousands of keys: the event was size-checked before the claim was attached.
    for (let i = 0; i < 20_000; i++) categories[`c${i}`] = true;
    const res = await segment('/v1/track', {
      userId,
      event: 'Product Viewed',
      properties: { product_id: 'p1' },
      context: { consent: { categories, policyVersion: '' } },
    });
    expect(await res.json()).toMatchObject({ accepted: 1 });
    const events = queue.messages.filter((m) => m.kind === 'events');
    expect(events).toHaveLength(1);
    for (const m of queue.messages) {
      expect(QueueMessageSchema.safeParse(m).success).toBe(true);
      // Queues refuse a message over 128 KB (the whole sendBatch fails).
      expect(JSON.stringify(m).length).toBeLessThan(64 * 1024);
    }
    expect(eventMessagesOf(queue.messages)[0]?.purposes).toEqual(['analytics']);
  });
});

describe('Global Privacy Control in the consent proof', () => {
  /** The proof of `anonymousId`'s choice: the ProfileDO's record (the access answer) and the queued consent record. */
  async function proofOf(anonymousId: string) {
    const res = await people(`anon:${anonymousId}`, 'GET', ADMIN_HEADERS, '&scope=edge');
    expect(res.status).toBe(200);
    const held = (await res.json()) as {
      profile?: { consent?: { state: { categories: Record<string, boolean> }; gpc?: boolean } };
    };
    const message = queue.messages.find((m) => m.kind === 'consent' && m.personId === `anon:${anonymousId}`);
    return { record: held.profile?.consent, message };
  }

  const everything = (anonymousId: string, source = 'banner') =>
    makeEvent(anonymousId, 'consent.updated', {
      properties: { ...consentFor('analytics', 'personalization', 'marketing'), source },
      consent: consentFor('analytics', 'personalization', 'marketing'),
    });

  it('a choice sent with Sec-GPC: 1 is recorded with marketing off and gpc true; without it, gpc false', async () => {
    const underGpc = anonId('gpc');
    const res = await collect([everything(underGpc)], { headers: { 'sec-gpc': '1' } });
    expect(await res.json()).toMatchObject({ accepted: 1 });
    const withGpc = await proofOf(underGpc);
    expect(withGpc.record).toMatchObject({ state: { categories: { marketing: false } }, gpc: true });
    expect(withGpc.message).toMatchObject({ consent: { categories: { marketing: false } }, gpc: true });

    const plain = anonId('no-gpc');
    await collect([everything(plain)]);
    const without = await proofOf(plain);
    expect(without.record).toMatchObject({ state: { categories: { marketing: true } }, gpc: false });
    expect(without.message).toMatchObject({ consent: { categories: { marketing: true } }, gpc: false });
    // The consumer keeps the field (its schema would drop a key it does not know).
    const parsed = QueueMessageSchema.safeParse(withGpc.message);
    expect(parsed.success && parsed.data.kind === 'consent' && parsed.data.gpc).toBe(true);
  });

  it("keeps the person's answers beside what the edge enforced: a category removed since, marketing GPC turned off", async () => {
    // A tab opened before a marketer removed "experiments" sends the choice its banner showed.
    const a = anonId('older-policy');
    const answers = { necessary: true, analytics: true, marketing: true, experiments: true };
    const choice = makeEvent(a, 'consent.updated', {
      properties: { categories: answers, policyVersion: 'before-the-change', source: 'banner' },
      consent: { categories: answers, policyVersion: 'before-the-change' },
    });
    await collect([choice], { headers: { 'sec-gpc': '1' } });
    const { message } = await proofOf(a);
    expect(message).toMatchObject({
      consent: { policyVersion: 'before-the-change', categories: { marketing: false } },
      claimed: answers,
      gpc: true,
    });
    expect(message?.kind === 'consent' && 'experiments' in message.consent.categories).toBe(false);
    // The consumer keeps the field (its schema would drop a key it does not know).
    const parsed = QueueMessageSchema.safeParse(message);
    expect(parsed.success && parsed.data.kind === 'consent' && parsed.data.claimed).toEqual(answers);
  });

  it('a choice its producer says GPC made (source gpc) is recorded with gpc true, marketing as sent', async () => {
    // What the edge does with the choice is unchanged (only Sec-GPC turns marketing off); the proof says why.
    const a = anonId('gpc-source');
    await collect([everything(a, 'gpc')]);
    const { record, message } = await proofOf(a);
    expect(record).toMatchObject({ source: 'gpc', gpc: true, state: { categories: { marketing: true } } });
    expect(message).toMatchObject({ source: 'gpc', gpc: true });
  });
});

describe('the choice an event was collected under', () => {
  it('is named by each queued event: the choice in force when it was accepted, none before any', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    const userIdSignature = await signed(userId);
    const chosen = (purposes: string[]) =>
      makeEvent(a, 'consent.updated', {
        userId,
        userIdSignature,
        consent: consentFor(...purposes),
        properties: { ...consentFor(...purposes), source: 'banner' },
      });
    // Sent before any choice reached the edge: it went by its own claim alone.
    const unrecorded = productView(a, 'p1', 'shoes', { userId, userIdSignature });
    const grant = chosen(['analytics', 'personalization', 'marketing']);
    const granted = productView(a, 'p2', 'shoes', { userId, userIdSignature });
    const withdrawal = chosen(['analytics']);
    const withdrawn = productView(a, 'p3', 'shoes', {
      userId,
      userIdSignature,
      context: { consent: consentFor('analytics') },
    });
    await collect([unrecorded, grant, granted, withdrawal, withdrawn]);
    // A server's event carries no claim: the person's choice is what it went by.
    const order = await segment('/v1/track', {
      userId,
      event: 'Order Completed',
      properties: { order_id: 'o1', total: 5 },
    });
    expect(await order.json()).toMatchObject({ accepted: 1 });

    const collectedUnder = new Map(
      eventMessagesOf(queue.messages).map((m) => [
        m.event.name === 'order.completed' ? 'order' : m.event.id,
        m.enrichment.consentId,
      ]),
    );
    expect(collectedUnder.get(unrecorded.id)).toBeUndefined();
    expect(collectedUnder.get(grant.id)).toBe(grant.id);
    expect(collectedUnder.get(granted.id)).toBe(grant.id);
    expect(collectedUnder.get(withdrawal.id)).toBe(withdrawal.id);
    expect(collectedUnder.get(withdrawn.id)).toBe(withdrawal.id);
    expect(collectedUnder.get('order')).toBe(withdrawal.id);
    // The consumer takes the messages as they are.
    for (const m of queue.messages) expect(QueueMessageSchema.safeParse(m).success).toBe(true);
  });

  it('is named by what the Worker makes of their events too: the promo, the recommendation, the decision served', async () => {
    // Not in the holdout: a held-out person gets no trigger output.
    const a = anonymousIdInGroup('consent-of-edge-events', false);
    const everything = consentFor('analytics', 'personalization', 'marketing');
    const grant = makeEvent(a, 'consent.updated', {
      consent: everything,
      properties: { ...everything, source: 'banner' },
    });
    // The fixture rule `outdoor-accessories` recommends and offers a promo on this cart add.
    const add = makeEvent(a, 'cart.item.added', {
      properties: { productId: 'trail-jacket', category: 'outdoor' },
      consent: everything,
    });
    expect(await (await collect([grant, add])).json()).toMatchObject({ accepted: 2 });
    const decided = await call(null, {
      method: 'GET',
      path: `/v1/decide?writeKey=pk_demo_attune&anonymousId=${a}&slots=hero,promo,recommendations`,
    });
    expect(decided.status).toBe(200);

    const made = eventMessagesOf(queue.messages).filter(
      (m) => m.event.name !== add.name && m.event.id !== grant.id,
    );
    expect(new Set(made.map((m) => m.event.name))).toEqual(
      new Set(['recommendation.triggered', 'promo.offered', 'decision.served']),
    );
    expect(made.map((m) => `${m.event.name} under ${m.enrichment.consentId}`).sort()).toEqual(
      made.map((m) => `${m.event.name} under ${grant.id}`).sort(),
    );
    for (const m of queue.messages) expect(QueueMessageSchema.safeParse(m).success).toBe(true);
  });
});
