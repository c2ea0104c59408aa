/**
 * Schema versions: every fixture of every version (fixtures/v0 = Segment spec payloads,
 * fixtures/v1 = the current envelope) validates to v1, and the v0 upcast is
 * deterministic, so a Segment producer's retries keep one idempotency key.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, ULID_PATTERN } from './constants.ts';
import { type CustomerAction, validateEvent } from './event.ts';
import { detectVersion, dottedName, ulidFromMessageId, upcast } from './versions.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
/** Server time the fixtures were captured against (all within the 30-day window). */
const NOW = Date.parse('2026-11-26T12:00:00.000Z');

type Json = Record<string, unknown>;

function fixtures(version: string): [string, Json][] {
  return readdirSync(join(FIXTURES, version))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(join(FIXTURES, version, f), 'utf8')) as Json]);
}

function toV1(input: unknown): CustomerAction {
  const result = validateEvent(input, { now: NOW });
  if (!result.ok) throw new Error(`rejected: ${JSON.stringify(result.errors, null, 2)}`);
  return result.event;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulidTime = (ulid: string): number =>
  [...ulid.slice(0, 10)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0);

const versions = readdirSync(FIXTURES).filter((d) => /^v\d+$/.test(d));

describe('fixtures', () => {
  it('has a folder for every schema version from 0 to the current one', () => {
    expect(versions.sort()).toEqual(Array.from({ length: SCHEMA_VERSION + 1 }, (_, i) => `v${i}`));
    for (const v of versions) expect(fixtures(v).length).toBeGreaterThan(0);
  });

  for (const version of versions) {
    describe(version, () => {
      it.each(fixtures(version))('%s parses to v1', (_file, fixture) => {
        expect(detectVersion(fixture)).toBe(Number(version.slice(1)));
        const event = toV1(fixture);
        expect(event.schemaVersion).toBe(SCHEMA_VERSION);
        expect(event.id).toMatch(ULID_PATTERN);
        // The v1 result is itself a valid v1 event, unchanged by a second pass.
        expect(toV1(JSON.parse(JSON.stringify(event)))).toStrictEqual(event);
      });
    });
  }

  it('v1 fixtures come through exactly as written', () => {
    for (const [, fixture] of fixtures('v1')) expect(toV1(fixture)).toStrictEqual(fixture);
  });
});

describe('v0 (Segment spec) upcast', () => {
  const v0 = Object.fromEntries(fixtures('v0'));
  const fixture = (name: string): Json => {
    const f = v0[name];
    if (!f) throw new Error(`missing fixture ${name}`);
    return f;
  };

  it('maps a Segment "Product Viewed" onto product.viewed with camel-cased properties', () => {
    const event = toV1(fixture('track-product-viewed.json'));
    expect(event).toMatchObject({
      type: 'track',
      name: 'product.viewed',
      anonymousId: '507f191e810c19729de860ea',
      timestamp: '2026-11-24T09:15:02.524Z',
      properties: {
        productId: '507f1f77bcf86cd799439011',
        imageUrl: 'https://shop.example.com/images/trail-jacket.jpg',
        currency: 'EUR',
        price: 149.9,
        brand: 'Attune Outdoor',
      },
      context: {
        locale: 'en-US',
        timezone: 'Europe/Berlin',
        campaign: { source: 'newsletter', medium: 'email', name: 'autumn_sale' },
        page: { path: '/products/trail-jacket' },
      },
    });
    expect(event.userId).toBeUndefined(); // Segment's `userId: null`
    // The Worker derives what it needs from the request; IP and user agent are not kept.
    expect(event.context).not.toHaveProperty('ip');
    expect(event.context).not.toHaveProperty('userAgent');
  });

  it('maps "Order Completed" with products[] and keeps extra Segment properties', () => {
    const event = toV1(fixture('track-order-completed.json'));
    expect(event.name).toBe('order.completed');
    expect(event.userId).toBe('97980cfea0067');
    expect(event.properties).toMatchObject({
      orderId: '50314b8e9bcf000000000000',
      checkoutId: 'fksdjfsdjfisjf9sdfjsd9f',
      total: 157.81,
      revenue: 152.91,
      products: [
        {
          productId: '507f1f77bcf86cd799439011',
          imageUrl: 'https://shop.example.com/images/trail-jacket.jpg',
        },
        { productId: '505bd76785ebb509fc183733', quantity: 2 },
      ],
    });
    expect(JSON.stringify(event.properties)).not.toContain('product_id');
  });

  it('accepts an "Order Completed" with only revenue and numeric Shopify ids', () => {
    const event = toV1(fixture('track-order-completed-revenue-only.json'));
    expect(event.name).toBe('order.completed');
    expect(event.properties).toMatchObject({
      orderId: '5493217394891',
      total: 64,
      revenue: 64,
      currency: 'USD',
      products: [
        { productId: '8123456789012', quantity: 2, variant: 44012345678901 },
        { productId: '8123456789099', quantity: 1 },
      ],
    });
    // A total the producer sent is never replaced by revenue.
    const withTotal = toV1({
      ...fixture('track-order-completed-revenue-only.json'),
      properties: { order_id: 7, total: 70, revenue: 64 },
    });
    expect(withTotal.properties).toMatchObject({ orderId: '7', total: 70, revenue: 64 });
  });

  it('maps "Order Refunded" onto order.refunded, with the refunded total and products', () => {
    const event = toV1(fixture('track-order-refunded.json'));
    expect(event.name).toBe('order.refunded');
    expect(event.userId).toBe('97980cfea0067');
    expect(event.properties).toMatchObject({
      orderId: '50314b8e9bcf000000000000',
      total: 149.9,
      currency: 'EUR',
      reason: 'returned',
      products: [{ productId: '507f1f77bcf86cd799439011', quantity: 1 }],
    });
    // Refunded in full: no total at all is a refund of the whole order, not an error.
    const whole = toV1({ ...fixture('track-order-refunded.json'), properties: { order_id: 5493217394891 } });
    expect(whole.properties).toEqual({ orderId: '5493217394891' });
    // A shop's refund id (numeric in Shopify's) tells partial refunds of one order apart.
    const part = toV1({
      ...fixture('track-order-refunded.json'),
      properties: { order_id: 5493217394891, refund_id: 918273, total: 20 },
    });
    expect(part.properties).toEqual({ orderId: '5493217394891', refundId: '918273', total: 20 });
  });

  it('maps page and screen calls onto page.viewed, titled by the call name when no title is given', () => {
    const page = toV1(fixture('page.json'));
    expect(page).toMatchObject({
      type: 'page',
      name: 'page.viewed',
      properties: { title: 'Attune Outdoor' },
    });
    expect(page.context?.screen).toEqual({ density: 2, height: 900, width: 1440 });
    const screen = toV1(fixture('screen.json'));
    expect(screen).toMatchObject({
      type: 'page',
      name: 'page.viewed',
      timestamp: '2026-11-25T07:45:00.000Z',
      properties: { title: 'Product Detail', productId: '507f1f77bcf86cd799439011' },
    });
    // A messageId that already is a ULID is kept as the id.
    expect(screen.id).toBe('01JDQ3Z8Y9K2M4N6P8R0S2T4V6');
    expect(screen.context).not.toHaveProperty('device');
  });

  it('maps identify with traits', () => {
    const source = fixture('identify.json');
    const event = toV1(source);
    expect(event).toMatchObject({ type: 'identify', name: 'user.identified', userId: '97980cfea0067' });
    expect(event.traits).toEqual(source.traits);
  });

  it('takes a message naming only a user id as long as the id limit allows, without an anonymousId it never sent', () => {
    const userId = `${'u'.repeat(126)}😀`; // 128 UTF-16 units: the longest user id allowed
    const event = toV1({
      type: 'track',
      event: 'Signed Up',
      userId,
      messageId: 'm-long',
      timestamp: '2026-11-24T09:15:02.524Z',
    });
    expect(event.userId).toBe(userId);
    expect(event.anonymousId).toBe(`server:${'u'.repeat(121)}`);
  });

  it('dots a custom event name and keeps its free properties as sent', () => {
    const source = fixture('track-video-playback-started.json');
    const event = toV1(source);
    expect(event.name).toBe('video.playback.started');
    expect(event.properties).toEqual(source.properties);
  });

  it('is deterministic: the same messageId always gives the same ULID, timed by the event', () => {
    for (const [file, source] of fixtures('v0')) {
      const a = toV1(source);
      const b = toV1(structuredClone(source));
      expect(a, file).toStrictEqual(b);
      if (source.messageId === a.id) continue; // already a ULID
      expect(ulidTime(a.id), file).toBe(Date.parse(a.timestamp));
    }
  });

  it('a message the server times gets an id from its messageId alone, the same on every retry', () => {
    const source: Json = {
      type: 'track',
      event: 'Order Completed',
      userId: 'cus_8741',
      messageId: 'curl-order-5493217394891',
      properties: { order_id: '5493217394891', total: 64 },
    };
    const first = validateEvent(source, { now: NOW, receivedAt: NOW });
    const retry = validateEvent(structuredClone(source), { now: NOW + 90_000, receivedAt: NOW + 90_000 });
    if (!first.ok || !retry.ok) throw new Error('rejected');
    expect(first.event.timestamp).toBe(new Date(NOW).toISOString());
    expect(retry.event.timestamp).toBe(new Date(NOW + 90_000).toISOString());
    expect(retry.event.id).toBe(first.event.id);
    // Elsewhere an event must carry its own time.
    expect(validateEvent(source, { now: NOW }).ok).toBe(false);
  });

  it('a message the server times keeps apart from the same messageId of another site or person', () => {
    const order = (userId: string): Json => ({
      type: 'track',
      event: 'Order Completed',
      userId,
      messageId: 'order-1001',
      properties: { order_id: '1001', total: 64 },
    });
    const idOf = (message: Json, scope: string) => {
      const result = validateEvent(message, { now: NOW, receivedAt: NOW, scope });
      if (!result.ok) throw new Error('rejected');
      return result.event.id;
    };
    const shopA = idOf(order('cus_1'), 'shop-a');
    expect(idOf(order('cus_1'), 'shop-a')).toBe(shopA);
    expect(idOf(order('cus_1'), 'shop-b')).not.toBe(shopA);
    expect(idOf(order('cus_2'), 'shop-a')).not.toBe(shopA);
  });

  it('keeps two sites’ same messageId sent at the same time apart, and a retry on one site the same', () => {
    const order: Json = {
      type: 'track',
      event: 'Order Completed',
      userId: 'cus_1',
      messageId: 'order-1001',
      timestamp: '2026-11-26T11:00:00Z',
      properties: { order_id: '1001', total: 64 },
    };
    const idOf = (scope: string) => {
      const result = validateEvent(structuredClone(order), { now: NOW, receivedAt: NOW, scope });
      if (!result.ok) throw new Error('rejected');
      return result.event.id;
    };
    expect(idOf('shop-a')).toBe(idOf('shop-a'));
    expect(idOf('shop-b')).not.toBe(idOf('shop-a'));
  });

  it('refuses a numeric id JSON cannot hold exactly, instead of making two users (or orders) one', () => {
    const track = (extra: Json): Json => ({
      type: 'track',
      event: 'Order Completed',
      messageId: 'm1',
      timestamp: '2026-11-26T11:00:00Z',
      properties: { order_id: '1', total: 1 },
      ...extra,
    });
    const big = validateEvent(
      track(
        // As it comes over the wire: JSON.parse has already rounded it.
        JSON.parse('{"userId": 12345678901234567891}') as Json,
      ),
      { now: NOW },
    );
    expect(big.ok).toBe(false);
    if (!big.ok)
      expect(big.errors[0]).toMatchObject({ path: 'userId', message: expect.stringContaining('as strings') });
    expect(validateEvent(track({ userId: 1.5 }), { now: NOW }).ok).toBe(false);
    const small = validateEvent(track({ userId: 42 }), { now: NOW });
    expect(small.ok && small.event.userId).toBe('42');
    const order = validateEvent(track({ userId: 'u', properties: { order_id: 2 ** 53 + 2, total: 1 } }), {
      now: NOW,
    });
    expect(order.ok).toBe(false);
    if (!order.ok) expect(order.errors[0]?.path).toBe('properties.orderId');
  });

  it('cuts a page’s long URL, title and campaign values to what the wire takes, instead of refusing the page view', () => {
    const result = validateEvent(
      {
        type: 'page',
        name: 'Shoes',
        category: 'Running',
        messageId: 'p1',
        anonymousId: 'a1',
        timestamp: '2026-11-26T11:00:00Z',
        properties: { title: 'Shoes | Shop' },
        context: {
          page: { url: `https://shop.example/${'x'.repeat(3000)}`, title: 't'.repeat(300) },
          campaign: { content: 'c'.repeat(300), source: 'news' },
        },
      },
      { now: NOW },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.event.context?.page?.url).toHaveLength(2048);
    expect(result.event.context?.page?.title).toHaveLength(256);
    expect(result.event.context?.campaign).toMatchObject({ source: 'news' });
    expect(result.event.context?.campaign?.content).toHaveLength(256);
    // The page's own name and category (page('Running', 'Shoes')) are kept: the category teaches interest.
    expect(result.event.properties).toMatchObject({
      title: 'Shoes | Shop',
      name: 'Shoes',
      category: 'Running',
    });
  });

  it('times a message whose timestamp is null on arrival, as Segment does', () => {
    const result = validateEvent(
      { type: 'track', event: 'X', messageId: 'n1', anonymousId: 'a1', timestamp: null },
      { now: NOW, receivedAt: NOW },
    );
    expect(result.ok && result.event.timestamp).toBe(new Date(NOW).toISOString());
  });

  it('refuses an absurd amount that would make a revenue counter Infinity', () => {
    const result = validateEvent(
      {
        type: 'track',
        event: 'Order Completed',
        messageId: 'o1',
        anonymousId: 'a1',
        timestamp: '2026-11-26T11:00:00Z',
        properties: { order_id: '1', total: 1e308 },
      },
      { now: NOW },
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.path).toBe('properties.total');
  });

  it('gives distinct ULIDs to distinct messageIds and a valid ULID for any input', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        (m1, m2, time) => {
          const a = ulidFromMessageId(m1, time);
          expect(a).toMatch(ULID_PATTERN);
          expect(ulidFromMessageId(m1, time)).toBe(a);
          expect(ulidTime(a)).toBe(time);
          if (m1 !== m2) expect(ulidFromMessageId(m2, time)).not.toBe(a);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('turns Segment event names into dotted names, never into prototype members', () => {
    expect(dottedName('Product Added')).toBe('cart.item.added');
    expect(dottedName('Video Playback Started')).toBe('video.playback.started');
    expect(dottedName('Subscribed')).toBe('track.subscribed');
    expect(dottedName('constructor')).toBe('track.constructor');
    expect(dottedName('toString')).toBe('track.tostring');
    expect(dottedName('3D View Opened')).toBe('n3d.view.opened');
    expect(dottedName('!!!')).toBe('track.unnamed');
  });

  it('reports a Segment call it cannot upcast, with the field to fix', () => {
    expect(upcast({ type: 'alias', messageId: 'm1', previousId: 'a', userId: 'b' })).toEqual({
      ok: false,
      errors: [
        {
          path: 'type',
          message: 'Segment "alias" calls are not supported; send track, page, screen or identify',
        },
      ],
    });
    const noId = validateEvent({ type: 'track', event: 'Signed In', messageId: '' }, { path: ['batch', 2] });
    expect(noId).toEqual({
      ok: false,
      errors: [{ path: 'batch[2].messageId', message: 'expected a non-empty string, received string ""' }],
    });
  });

  it('never rejects an event for being old-shaped, but does reject an unknown future version', () => {
    expect(upcast({ schemaVersion: 2, id: 'x' })).toEqual({
      ok: false,
      errors: [
        { path: 'schemaVersion', message: 'unsupported schema version 2; this server reads versions 0 to 1' },
      ],
    });
    expect(upcast({ id: 'x' })).toEqual({
      ok: false,
      errors: [{ path: 'schemaVersion', message: 'required: expected 1' }],
    });
  });
});
