/**
 * validateEvent on hostile and mistaken input: every case gives the documented error
 * (field path + message) and nothing ever throws past the API or pollutes a prototype.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMITS } from './constants.ts';
import { formatFieldError } from './errors.ts';
import { customerAction, NOW } from './event.arbitraries.ts';
import { type EventValidation, instantOf, validateEvent } from './event.ts';

const valid = {
  id: '01JDQ3Z8Y9K2M4N6P8R0S2T4V6',
  type: 'track',
  name: 'product.viewed',
  timestamp: '2026-11-26T11:00:00.000Z',
  anonymousId: '9b2f6c1e-7a4d-4e8b-b1c3-5d6e7f8a9b0c',
  properties: { productId: 'p-1', price: 149.9, currency: 'EUR' },
  schemaVersion: 1,
};

type Input = Record<string, unknown>;

/** The "path: message" lines of a rejected event (fails the test if it was accepted). */
function errorLines(input: unknown, path: readonly PropertyKey[] = []): string[] {
  const result = validateEvent(input, { now: NOW, path });
  if (result.ok) throw new Error(`accepted: ${JSON.stringify(input).slice(0, 200)}`);
  return result.errors.map(formatFieldError);
}
const withProps = (properties: Input): Input => ({ ...valid, properties });
const nest = (levels: number): Input => {
  let v: Input = {};
  for (let i = levels; i > 0; i--) v = { [`l${i}`]: v };
  return v;
};

afterEach(() => {
  // No case may leave anything on Object.prototype.
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  expect(({} as Input).polluted).toBeUndefined();
});

describe('a valid event', () => {
  it('is accepted as sent', () => {
    expect(validateEvent(valid, { now: NOW })).toEqual({ ok: true, event: valid });
  });
});

describe('wrong types and values', () => {
  it('names the field path and the received value', () => {
    expect(errorLines(withProps({ productId: 'p-1', price: '12,50' }), ['batch', 3])).toEqual([
      'batch[3].properties.price: expected number, received string "12,50"',
    ]);
    expect(errorLines({ ...valid, type: 'alias' })).toEqual([
      'type: expected one of "page", "track", "identify", "consent", received string "alias"',
    ]);
    expect(errorLines({ ...valid, name: 'Product Viewed' })).toEqual([
      'name: expected a dotted lower-case name like "product.viewed", received string "Product Viewed"',
    ]);
    expect(errorLines(withProps({ productId: 'p-1', quantity: 1.5, currency: 'eur' }))).toEqual([
      'properties.currency: expected an ISO 4217 currency code like "EUR", received string "eur"',
      'properties.quantity: expected integer, received number 1.5',
    ]);
    expect(
      errorLines({ ...valid, name: 'order.completed', properties: { orderId: 'o-1', total: -5 } }),
    ).toEqual(['properties.total: expected a number at least 0, received number -5']);
  });

  it('reports missing required fields', () => {
    const { anonymousId: _, ...noAnonymousId } = valid;
    expect(errorLines(noAnonymousId)).toEqual(['anonymousId: required: expected string']);
    expect(errorLines({ ...valid, name: 'order.completed', properties: {} })).toEqual([
      'properties.orderId: required: expected string',
      'properties.total: required: expected number',
    ]);
    expect(errorLines({ ...valid, sessionId: '' })).toEqual(['sessionId: expected a non-empty string']);
  });

  it('rejects a misspelt envelope field instead of dropping it', () => {
    expect(errorLines({ ...valid, anonymousID: 'x' }, ['batch', 0])).toEqual([
      'batch[0]: unknown field(s): anonymousID',
    ]);
  });

  it('enforces the rules between fields', () => {
    expect(errorLines({ ...valid, type: 'page' })).toEqual(['name: page events must be named "page.viewed"']);
    expect(errorLines({ ...valid, type: 'consent' })).toEqual([
      'name: consent events must be named "consent.updated"',
    ]);
    expect(errorLines({ ...valid, userIdSignature: 'a'.repeat(64) })).toEqual([
      'userIdSignature: a signature needs the userId it signs',
    ]);
    expect(errorLines({ ...valid, userId: 'u1', userIdSignature: 'g'.repeat(64) })[0]).toMatch(
      /^userIdSignature: expected a 64-digit hex HMAC-SHA256 signature of the userId/,
    );
    // Upper-case hex (.NET's Convert.ToHexString, Java's printHexBinary) is the same signature.
    expect(validateEvent({ ...valid, userId: 'u1', userIdSignature: 'A'.repeat(64) }, { now: NOW }).ok).toBe(
      true,
    );
    // The expiring form: a Unix time in seconds, a dot, the hex (the Worker checks both).
    expect(
      validateEvent({ ...valid, userId: 'u1', userIdSignature: `1767225600.${'a'.repeat(64)}` }, { now: NOW })
        .ok,
    ).toBe(true);
    for (const malformed of [
      `.${'a'.repeat(64)}`,
      `1767225600-${'a'.repeat(64)}`,
      `1767225600.${'a'.repeat(63)}`,
    ])
      expect(errorLines({ ...valid, userId: 'u1', userIdSignature: malformed })[0]).toMatch(
        /^userIdSignature: expected .* or an expiring one: <expiry>\.<64 hex digits>/,
      );
  });

  it('rejects what is not an event object', () => {
    for (const input of [null, undefined, 'event', 42, true, [valid]]) {
      expect(errorLines(input, ['batch', 1])).toHaveLength(1);
      expect(errorLines(input, ['batch', 1])[0]).toMatch(/^batch\[1\]: expected an event object, received /);
    }
  });
});

describe('ULIDs', () => {
  it.each([
    ['not-a-ulid'],
    ['01jdq3z8y9k2m4n6p8r0s2t4v6'], // lower case
    ['01JDQ3Z8Y9K2M4N6P8R0S2T4VU'], // U is not Crockford base32
    ['01JDQ3Z8Y9K2M4N6P8R0S2T4V'], // 25 characters
    ['01JDQ3Z8Y9K2M4N6P8R0S2T4V66'], // 27 characters
    ['81JDQ3Z8Y9K2M4N6P8R0S2T4V6'], // time beyond 48 bits
    [''],
  ])('rejects %j', (id) => {
    expect(errorLines({ ...valid, id })).toEqual([
      `id: expected a ULID (26 Crockford base32 characters), received string ${JSON.stringify(id)}`,
    ]);
  });

  it('rejects a non-string id', () => {
    expect(errorLines({ ...valid, id: 12345 })).toEqual(['id: expected string, received number 12345']);
  });
});

describe('oversize input', () => {
  it('rejects strings over their limits, saying how long they were', () => {
    expect(errorLines({ ...valid, anonymousId: 'a'.repeat(LIMITS.maxIdLength + 1) })).toEqual([
      `anonymousId: string too long: 129 characters, at most ${LIMITS.maxIdLength}`,
    ]);
    expect(errorLines(withProps({ productId: 'p', note: 'x'.repeat(LIMITS.maxStringLength + 1) }))).toEqual([
      'properties.note: string too long: 4097 characters, at most 4096',
    ]);
    expect(errorLines({ ...valid, name: `a.${'b'.repeat(LIMITS.maxNameLength)}` })).toEqual([
      'name: string too long: 102 characters, at most 100',
    ]);
    expect(
      errorLines({ ...valid, context: { page: { url: `https://x.test/${'p'.repeat(2040)}` } } }),
    ).toEqual(['context.page.url: string too long: 2055 characters, at most 2048']);
    expect(errorLines(withProps({ productId: 'p', ['k'.repeat(LIMITS.maxKeyLength + 1)]: 1 }))).toEqual([
      `properties.${'k'.repeat(40)}: invalid key: at most 128 characters of valid Unicode`,
    ]);
  });

  it('accepts strings exactly at their limits', () => {
    const event = {
      ...valid,
      anonymousId: 'a'.repeat(LIMITS.maxIdLength),
      properties: { productId: 'p', note: 'x'.repeat(LIMITS.maxStringLength) },
    };
    expect(validateEvent(event, { now: NOW }).ok).toBe(true);
  });

  it('rejects an event over the byte limit, counting UTF-8 bytes', () => {
    // 9 × 1,400 three-byte characters: 37,800 bytes in 12,600 characters.
    const properties: Input = { productId: 'p' };
    for (let i = 0; i < 9; i++) properties[`part${i}`] = '€'.repeat(1400);
    const lines = errorLines(withProps(properties), ['batch', 7]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^batch\[7\]: event too large: \d+ bytes, at most 32768$/);
  });

  it('limits arrays and the number of keys', () => {
    expect(errorLines(withProps({ productId: 'p', list: Array.from({ length: 101 }, (_, i) => i) }))).toEqual(
      ['properties.list: too many items: 101, at most 100'],
    );
    const wide: Input = { productId: 'p' };
    for (let i = 0; i < LIMITS.maxPropertyKeys; i++) wide[`k${i}`] = i;
    expect(errorLines(withProps(wide))).toEqual(['properties: too many keys: at most 200']);
  });
});

describe('nesting', () => {
  it(`accepts ${LIMITS.maxPropertyDepth} levels and rejects one more, in properties, traits and context`, () => {
    expect(validateEvent({ ...valid, name: 'x.y', properties: nest(4) }, { now: NOW }).ok).toBe(true);
    expect(errorLines({ ...valid, name: 'x.y', properties: nest(5) })).toEqual([
      'properties.l1.l2.l3.l4.l5: nested too deep: at most 5 levels',
    ]);
    expect(errorLines({ ...valid, type: 'identify', name: 'user.identified', traits: nest(6) })).toEqual([
      'traits.l1.l2.l3.l4.l5: nested too deep: at most 5 levels',
    ]);
    expect(errorLines({ ...valid, context: { extra: nest(5) } })).toEqual([
      'context.extra.l1.l2.l3.l4: nested too deep: at most 5 levels',
    ]);
    expect(errorLines({ ...valid, name: 'x.y', properties: { a: [[[[[1]]]]] } })).toEqual([
      'properties.a[0][0][0][0]: nested too deep: at most 5 levels',
    ]);
  });

  it('stops at the limit on a cyclic object instead of recursing forever', () => {
    const properties: Input = { productId: 'p' };
    properties.self = properties;
    expect(errorLines(withProps(properties))).toEqual([
      'properties.self.self.self.self.self: nested too deep: at most 5 levels',
    ]);
    const event: Input = { ...valid };
    event.self = event;
    expect(errorLines(event)).toEqual(['unknown field(s): self']);
  });
});

describe('prototype pollution', () => {
  it.each(['__proto__', 'constructor', 'prototype'])('rejects a "%s" key anywhere in a JSON map', (key) => {
    const text = `{"polluted":{"polluted":true},"${key}":{"polluted":true}}`;
    const map = JSON.parse(text) as Input;
    expect(errorLines({ ...valid, name: 'x.y', properties: map })).toEqual([
      `properties.${key}: key "${key}" is not allowed`,
    ]);
    expect(errorLines({ ...valid, name: 'x.y', properties: { nested: [{ ok: 1 }, map] } })).toEqual([
      `properties.nested[1].${key}: key "${key}" is not allowed`,
    ]);
    expect(errorLines({ ...valid, type: 'identify', name: 'user.identified', traits: map })).toEqual([
      `traits.${key}: key "${key}" is not allowed`,
    ]);
    expect(errorLines({ ...valid, context: { page: map } })).toEqual([
      `context.page.${key}: key "${key}" is not allowed`,
    ]);
  });

  it('rejects a __proto__ envelope field from JSON text and leaves prototypes alone', () => {
    const text = JSON.stringify(valid).replace('{', '{"__proto__":{"polluted":true},');
    const input: unknown = JSON.parse(text);
    expect(errorLines(input)).toEqual(['unknown field(s): __proto__']);
    expect(Object.getPrototypeOf(input)).toBe(Object.prototype);
  });

  it('rejects __proto__ in a Segment (v0) event after upcasting', () => {
    const text =
      '{"type":"track","event":"Wishlist Shared","messageId":"m-1","anonymousId":"a",' +
      '"timestamp":"2026-11-26T11:00:00Z","properties":{"__proto__":{"polluted":true},"ok":1}}';
    expect(errorLines(JSON.parse(text))).toEqual(['properties.__proto__: key "__proto__" is not allowed']);
  });

  it('rejects objects that are not plain JSON (class instances, dates, maps)', () => {
    expect(errorLines(withProps({ productId: 'p', at: new Date(NOW) }))).toEqual([
      'properties.at: expected a plain JSON object, received object',
    ]);
    expect(errorLines(withProps({ productId: 'p', m: new Map() }))).toEqual([
      'properties.m: expected a plain JSON object, received object',
    ]);
  });
});

describe('numbers and values JSON cannot carry (in-process callers)', () => {
  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
  ])('rejects %s in properties and context', (n, shown) => {
    expect(errorLines(withProps({ productId: 'p', price: n }))).toEqual([
      `properties.price: expected a finite number, received number ${shown}`,
    ]);
    expect(errorLines({ ...valid, context: { screen: { width: n, height: 1 } } })).toEqual([
      `context.screen.width: expected a finite number, received number ${shown}`,
    ]);
    expect(errorLines({ ...valid, schemaVersion: n })).toEqual([
      `schemaVersion: unsupported schema version ${shown}; this server reads versions 0 to 1`,
    ]);
  });

  it('rejects undefined, functions, symbols and bigints inside maps', () => {
    expect(
      errorLines(withProps({ productId: 'p', a: undefined, f: () => 1, s: Symbol('s'), b: 1n })),
    ).toEqual([
      'properties.a: expected a JSON value, received undefined',
      'properties.f: expected a JSON value, received function',
      'properties.s: expected a JSON value, received symbol',
      'properties.b: expected a JSON value, received bigint',
    ]);
  });
});

describe('lone surrogates', () => {
  it('rejects them in values, keys and envelope ids', () => {
    expect(errorLines(withProps({ productId: 'p', note: 'ok \uD800 broken' }))).toEqual([
      'properties.note: string contains a lone surrogate (invalid Unicode)',
    ]);
    expect(errorLines(withProps({ productId: 'p', 'k\uDC00': 1 }))[0]).toMatch(
      /^properties\["k\\udc00"\]: invalid key: at most 128 characters of valid Unicode$/,
    );
    expect(errorLines({ ...valid, anonymousId: 'anon-\uDFFF' })).toEqual([
      'anonymousId: string contains a lone surrogate (invalid Unicode)',
    ]);
    expect(errorLines({ ...valid, userId: '\uD83D' })).toEqual([
      'userId: string contains a lone surrogate (invalid Unicode)',
    ]);
    expect(errorLines({ ...valid, context: { page: { title: '\uD83D' } } })).toEqual([
      'context.page.title: string contains a lone surrogate (invalid Unicode)',
    ]);
  });

  it('accepts well-formed astral characters (surrogate pairs)', () => {
    expect(validateEvent(withProps({ productId: 'p', note: 'Gipfel 🏔️' }), { now: NOW }).ok).toBe(true);
  });
});

describe('timestamps', () => {
  const at = (ms: number): Input => ({ ...valid, timestamp: new Date(ms).toISOString() });
  const hour = 3_600_000;

  it('accepts the clock-skew and offline windows and rejects beyond them', () => {
    expect(validateEvent(at(NOW + 23 * hour), { now: NOW }).ok).toBe(true);
    expect(validateEvent(at(NOW - 29 * 24 * hour), { now: NOW }).ok).toBe(true);
    expect(errorLines(at(NOW + 25 * hour))).toEqual([
      'timestamp: timestamp 2026-11-27T13:00:00.000Z is more than 24 hours in the future; check the device clock',
    ]);
    expect(errorLines(at(NOW - 31 * 24 * hour))).toEqual([
      'timestamp: timestamp 2026-10-26T12:00:00.000Z is more than 30 days old',
    ]);
  });

  it("reads the window on the sender's clock when it says when it sent the event", () => {
    const day = 24 * hour;
    // A phone set three days ahead stamps its events and its sentAt alike: nothing refused.
    const sentAt = NOW + 3 * day;
    expect(validateEvent(at(sentAt - hour), { now: NOW, sentAt }).ok).toBe(true);
    // One set back a year, whose queue held an event for a week: kept too.
    expect(validateEvent(at(NOW - 365 * day - 7 * day), { now: NOW, sentAt: NOW - 365 * day }).ok).toBe(true);
    // The window still holds on that clock, and the message names both times.
    const ahead = validateEvent(at(sentAt + 25 * hour), { now: NOW, sentAt });
    expect(ahead.ok ? [] : ahead.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'timestamp: timestamp 2026-11-30T13:00:00.000Z is more than 24 hours after the sentAt it was sent with (2026-11-29T12:00:00.000Z); stamp both from one clock',
    ]);
    const old = validateEvent(at(sentAt - 31 * day), { now: NOW, sentAt });
    expect(old.ok ? [] : old.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'timestamp: timestamp 2026-10-29T12:00:00.000Z is more than 30 days before the sentAt it was sent with (2026-11-29T12:00:00.000Z)',
    ]);
  });

  it('rejects timestamps far in the future or past', () => {
    expect(errorLines({ ...valid, timestamp: '9999-12-31T23:59:59.999Z' })[0]).toMatch(
      /^timestamp: timestamp 9999-12-31T23:59:59.999Z is more than 24 hours in the future/,
    );
    expect(errorLines({ ...valid, timestamp: '1970-01-01T00:00:00Z' })).toEqual([
      'timestamp: timestamp 1970-01-01T00:00:00Z is more than 30 days old',
    ]);
  });

  it('uses the offset: +14:00 and -12:00 name the same instants as Z', () => {
    expect(validateEvent({ ...valid, timestamp: '2026-11-27T01:00:00+14:00' }, { now: NOW }).ok).toBe(true);
    expect(errorLines({ ...valid, timestamp: '2026-11-28T02:00:01+14:00' })[0]).toMatch(/in the future/);
  });

  it.each([
    ['yesterday'],
    ['2026-11-26T10:00:00'], // no time zone: ambiguous
    ['2026-02-30T10:00:00Z'], // no such day
    ['2026-11-26 10:00:00Z'],
    ['1732604400000'],
  ])('rejects %j as not an ISO 8601 instant', (timestamp) => {
    expect(errorLines({ ...valid, timestamp })).toEqual([
      `timestamp: expected an ISO 8601 date-time with a time zone, like "2026-11-26T09:30:00.000Z", received string ${JSON.stringify(timestamp)}`,
    ]);
  });
});

describe('objects that fight back', () => {
  it('turns a throwing getter into an error instead of throwing', () => {
    const event = { ...valid };
    Object.defineProperty(event, 'properties', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    expect(errorLines(event, ['batch', 2])).toEqual(['batch[2]: unreadable event: getter exploded']);
  });

  it('survives a proxy whose traps throw', () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no keys for you');
        },
        get() {
          throw new Error('no values either');
        },
      },
    );
    expect(errorLines(hostile)[0]).toMatch(/^unreadable event: no (keys for you|values either)$/);
    expect(errorLines(withProps({ productId: 'p', nested: hostile }))).toEqual([
      'unreadable event: no keys for you',
    ]);
  });

  it('never throws on anything, valid or mutated', () => {
    const anyValue = fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true });
    const mutated = fc
      .tuple(
        customerAction,
        fc.constantFrom('id', 'type', 'name', 'timestamp', 'properties', 'context', 'traits'),
        anyValue,
      )
      .map(([event, field, value]) => ({ ...event, [field]: value }));
    fc.assert(
      fc.property(fc.oneof(anyValue, mutated), (input) => {
        let result: EventValidation | undefined;
        expect(() => {
          result = validateEvent(input, { now: NOW });
        }).not.toThrow();
        if (result && !result.ok) {
          for (const e of result.errors) {
            expect(typeof e.path).toBe('string');
            expect(e.message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('instantOf', () => {
  it('reads every valid ISO 8601 timestamp as Date.parse does', () => {
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    const stamp = fc
      .record({
        ms: fc.integer({ min: Date.UTC(100, 0, 1), max: Date.UTC(9999, 11, 31) }),
        fraction: fc.oneof(fc.constant(''), fc.stringMatching(/^\.[0-9]{1,9}$/)),
        offset: fc.oneof(
          fc.constant('Z'),
          fc
            .tuple(
              fc.constantFrom('+', '-'),
              fc.integer({ min: 0, max: 23 }),
              fc.integer({ min: 0, max: 59 }),
            )
            .map(([sign, h, m]) => `${sign}${pad(h)}:${pad(m)}`),
        ),
      })
      .map(({ ms, fraction, offset }) => `${new Date(ms).toISOString().slice(0, 19)}${fraction}${offset}`);
    fc.assert(
      fc.property(stamp, (timestamp) => {
        expect(instantOf(timestamp)).toBe(Date.parse(timestamp));
      }),
      { numRuns: 2000 },
    );
    for (const t of [
      '2024-02-29T23:59:59.999+14:00',
      '0050-06-01T00:00:00Z',
      '1970-01-01T00:00:00.000-00:30',
    ]) {
      expect(instantOf(t)).toBe(Date.parse(t));
    }
  });
});
