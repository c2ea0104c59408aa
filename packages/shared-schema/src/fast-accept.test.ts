/**
 * The fast path must never disagree with zod: for valid, nearly valid and arbitrary
 * inputs, the compiled acceptor says yes exactly when zod accepts the value and returns
 * it unchanged. Also the byte counting that spares events a JSON.stringify.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ConsentConfigSchema, DEFAULT_CONSENT_CONFIG } from './consent.ts';
import { KNOWN_EVENT_NAMES } from './constants.ts';
import { customerAction, jsonMap, KNOWN_PROPERTIES } from './event.arbitraries.ts';
import { ConsentStateSchema, CustomerActionSchema, EventContextSchema } from './event.ts';
import { EVENT_PROPERTIES } from './events.ts';
import { fastAcceptor } from './fast-accept.ts';
import { checkJsonMapBytes, jsonByteLength } from './json.ts';
import { QueueMessageSchema } from './queue.ts';
import { CollectEnvelopeSchema } from './wire.ts';

const DELETE = Symbol('delete');

/** Every path to a value inside a JSON-like value (the root included). */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) out.push(...paths(value[i], [...prefix, i]));
  } else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

/** A copy of `value` with the value at one path replaced (or deleted, or a key added beside it). */
function mutate(value: unknown, pick: number, replacement: unknown, extraKey: boolean): unknown {
  const root = structuredClone(value);
  const all = paths(root).filter((p) => p.length > 0);
  const path = all[pick % Math.max(1, all.length)];
  if (!path) return replacement;
  let parent = root as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (extraKey && !Array.isArray(parent)) parent.unexpectedField = replacement;
  else if (replacement === DELETE) delete parent[last];
  else parent[last] = replacement;
  return root;
}

const boundary = fc.constantFrom<unknown>(
  DELETE,
  '',
  'x'.repeat(65),
  'x'.repeat(129),
  'x'.repeat(2049),
  'eur',
  'EUR',
  'page',
  'banner',
  '2026-11-26T11:00:00Z',
  '2026-11-26T11:00:00',
  '01JDQ3Z8Y9K2M4N6P8R0S2T4V6',
  'a\uD800',
  -1,
  0,
  -0,
  1,
  1.5,
  101,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  true,
  [],
  {},
  [1, 'a'],
  new Date(0),
);
const replacement = fc.oneof(boundary, fc.anything(), fc.string(), fc.integer(), fc.double());

/** valid values of a schema, and mutations of them, and anything at all. */
function inputs(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    {
      weight: 6,
      arbitrary: fc
        .tuple(valid, fc.nat(), replacement, fc.nat(4))
        .map(([v, pick, r, extra]) => mutate(v, pick, r, extra === 0)),
    },
    { weight: 1, arbitrary: fc.anything() },
  );
}

function agrees(schema: z.ZodType, input: unknown): void {
  const fast = fastAcceptor(schema)(input);
  const slow = schema.safeParse(input);
  const unchanged = slow.success && isDeepStrictEqual(slow.data, input);
  if (fast !== unchanged) {
    throw new Error(
      `fast path says ${fast}, zod says ${slow.success ? (unchanged ? 'accepted as is' : 'accepted with changes') : 'rejected'} for ${String(JSON.stringify(input)).slice(0, 300)}`,
    );
  }
}

const context = customerAction.map((e) => e.context ?? {});

describe('fastAcceptor agrees with zod', () => {
  it('on CustomerAction envelopes', () => {
    fc.assert(
      fc.property(inputs(customerAction), (input) => agrees(CustomerActionSchema, input)),
      { numRuns: 600 },
    );
  });

  it('on contexts', () => {
    fc.assert(
      fc.property(inputs(context), (input) => agrees(EventContextSchema, input)),
      { numRuns: 800 },
    );
  });

  it.each(KNOWN_EVENT_NAMES)('on %s properties', (name) => {
    fc.assert(
      fc.property(inputs(KNOWN_PROPERTIES[name]), (input) => agrees(EVENT_PROPERTIES[name], input)),
      { numRuns: 300 },
    );
  });

  it('on consent states and configurations, and envelopes that strip unknown keys', () => {
    const consent = customerAction.map((e) => ({
      categories: { necessary: true, [e.id]: false },
      policyVersion: '1',
    }));
    fc.assert(
      fc.property(inputs(consent), (input) => agrees(ConsentStateSchema, input)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(inputs(fc.constant(DEFAULT_CONSENT_CONFIG)), (input) => agrees(ConsentConfigSchema, input)),
      { numRuns: 300 },
    );
    const envelope = customerAction.map((e) => ({ writeKey: 'wk', sentAt: e.timestamp, batch: [e] }));
    fc.assert(
      fc.property(inputs(envelope), (input) => agrees(CollectEnvelopeSchema, input)),
      { numRuns: 300 },
    );
  });

  it('on arrays with holes, which zod fills in (an in-process caller can build one; JSON cannot)', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested.
    const batch = [, { id: 'x' }];
    agrees(CollectEnvelopeSchema, { writeKey: 'wk', sentAt: '2026-10-27T12:01:00.000Z', batch });
  });

  it('leaves an own "__proto__" key to zod, which copies it into a prototype (found by the property above)', () => {
    const looseObject = EVENT_PROPERTIES['product.list_viewed'];
    for (const input of [
      JSON.parse('{"__proto__":null}'),
      JSON.parse('{"__proto__":{"a":1},"category":"x"}'),
    ]) {
      expect(fastAcceptor(looseObject)(input)).toBe(false);
      agrees(looseObject, input);
    }
    const record = { categories: JSON.parse('{"necessary":true,"__proto__":true}'), policyVersion: '1' };
    expect(fastAcceptor(ConsentStateSchema)(record)).toBe(false);
    agrees(ConsentStateSchema, record);
  });

  it('takes the fast path for valid events (so the speed-up is real)', () => {
    fc.assert(
      fc.property(customerAction, (event) => {
        expect(fastAcceptor(CustomerActionSchema)(event)).toBe(true);
      }),
    );
  });

  it('answers no for what it does not compile (unions), leaving zod to decide', () => {
    const message = { kind: 'covisit', siteId: 's', from: 'a', to: 'b', at: 'now' };
    expect(QueueMessageSchema.safeParse(message).success).toBe(true);
    expect(fastAcceptor(QueueMessageSchema)(message)).toBe(false);
  });
});

describe('jsonByteLength', () => {
  const encoded = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).byteLength;
  const anyUnits = fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 30 })
    .map((units) => String.fromCharCode(...units));

  it('equals the UTF-8 length of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
        expect(jsonByteLength(v)).toBe(encoded(v));
      }),
      { numRuns: 1000 },
    );
  });

  it('counts escapes, control characters and lone surrogates as JSON.stringify writes them', () => {
    fc.assert(
      fc.property(anyUnits, fc.dictionary(anyUnits, anyUnits), (s, map) => {
        expect(jsonByteLength(s)).toBe(encoded(s));
        expect(jsonByteLength(map)).toBe(encoded(map));
      }),
      { numRuns: 1000 },
    );
    expect(jsonByteLength({ a: undefined, b: [undefined, 1], c: '"\\\n\u0001é€😀' })).toBe(
      encoded({ a: undefined, b: [undefined, 1], c: '"\\\n\u0001é€😀' }),
    );
  });

  it('is never more than the bound the JSON-map check reports', () => {
    fc.assert(
      fc.property(jsonMap, (map) => {
        const bound = checkJsonMapBytes(map, []);
        expect(bound).toBeGreaterThanOrEqual(jsonByteLength(map));
      }),
      { numRuns: 500 },
    );
  });
});
