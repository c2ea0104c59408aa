/**
 * Bad input, at volume: 10,000 random malformed bodies (wrong types, oversize, deep
 * nesting, invalid JSON, binary, `__proto__` keys, huge numbers) through the real fetch
 * handler. None may produce a 5xx or crash the Worker, and valid traffic must still be
 * accepted afterwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  anonId,
  call,
  collect,
  EVENT_FIELDS,
  envWithSites,
  makeEvent,
  ORIGIN,
  recordQueue,
  SITE,
  WRITE_KEY,
} from './test-support.ts';

const BODIES = 10_000;
const ALLOWED = new Set([200, 207, 400, 401, 403, 413, 429]);

// Generous limits so the fuzz measures parsing, not the rate limiter (429 is allowed anyway).
const fuzzEnv = envWithSites([
  {
    id: SITE,
    writeKey: WRITE_KEY,
    allowedOrigins: [ORIGIN],
    settings: { rateLimit: { ipPerSecond: 1e6, ipBurst: 1e6, anonymousPerSecond: 1e6, anonymousBurst: 1e6 } },
  },
]);

const junk = fc.anything({ maxDepth: 3, maxKeys: 6, withNullPrototype: true, withObjectString: true });
const hugeNumber = fc.constantFrom(
  '1e309',
  '-1e309',
  '123456789012345678901234567890123',
  '1e-400',
  '0x10',
  'NaN',
  'Infinity',
  '-0',
);

function validEventJson(): Record<string, unknown> {
  return makeEvent('fuzz-person', 'product.viewed', {
    properties: { productId: 'p1', category: 'c' },
  }) as unknown as Record<string, unknown>;
}

const envelope = (batch: string) =>
  `{"writeKey":"${WRITE_KEY}","sentAt":"${new Date().toISOString()}","batch":${batch}}`;

const bodies: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  // Random text and random bytes (binary, invalid UTF-8).
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.uint8Array({ maxLength: 400 }),
  // Arbitrary JSON documents, and arbitrary values where the envelope or events belong.
  fc.json({ maxDepth: 5 }),
  fc.array(junk, { maxLength: 6 }).map((batch) => envelope(JSON.stringify(batch) ?? 'null')),
  fc.record({ writeKey: junk, sentAt: junk, batch: junk }).map((o) => JSON.stringify(o) ?? ''),
  // One valid event with one field replaced by something wrong.
  fc.record({ field: fc.constantFrom(...EVENT_FIELDS), value: junk }).map(({ field, value }) => {
    const e = validEventJson();
    e[field] = value;
    return envelope(JSON.stringify([e]) ?? '[]');
  }),
  // Prototype pollution attempts, as raw JSON text so the keys really are "__proto__".
  fc.constantFrom('__proto__', 'constructor', 'prototype').map((key) => {
    const e = JSON.stringify(validEventJson()).slice(0, -1);
    return envelope(
      `[${e},"${key}":{"polluted":true},"properties":{"${key}":{"polluted":true},"productId":"p1"},"traits":{"${key}":{"polluted":1}}}]`,
    );
  }),
  fc.constant(
    `{"__proto__":{"polluted":true},"writeKey":"${WRITE_KEY}","batch":[{"__proto__":{"polluted":true}}]}`,
  ),
  // Deep nesting, balanced and not.
  fc
    .integer({ min: 10, max: 20_000 })
    .map((depth) => envelope(`[{"properties":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}]`)),
  fc.integer({ min: 10, max: 100_000 }).map((depth) => '['.repeat(depth)),
  // Huge and odd numbers where numbers and strings belong.
  hugeNumber.map((n) => {
    const e = JSON.stringify(validEventJson()).slice(0, -1);
    return envelope(`[${e},"properties":{"productId":"p1","price":${n},"quantity":${n}}}]`);
  }),
  hugeNumber.map((n) => envelope(`[{"schemaVersion":${n}}]`)),
  // Oversize: long strings inside an event, and rare bodies over the request limit.
  fc.integer({ min: 1, max: 40 }).map((kb) => {
    const e = validEventJson();
    e.properties = { productId: 'p1', blob: 'x'.repeat(kb * 1024) };
    return envelope(JSON.stringify([e]) ?? '[]');
  }),
  fc.constant(null).map(() => envelope(`["${'y'.repeat(600 * 1024)}"]`)),
);

describe('fuzz: malformed bodies', () => {
  it(`${BODIES.toLocaleString('en')} random malformed bodies: no 5xx, no crash, valid traffic still accepted`, {
    timeout: 600_000,
  }, async () => {
    const queue = recordQueue();
    try {
      const samples = fc.sample(bodies, { numRuns: BODIES, seed: 20261126 });
      // Some bodies leave out the writeKey's Origin, some carry a foreign one.
      const origins = [ORIGIN, ORIGIN, ORIGIN, null, 'https://evil.example'];
      const seen = new Map<number, number>();
      const chunk = 100;
      for (let i = 0; i < samples.length; i += chunk) {
        const statuses = await Promise.all(
          samples.slice(i, i + chunk).map(async (body, j) => {
            const res = await call(body, { env: fuzzEnv, origin: origins[(i + j) % origins.length] ?? null });
            await res.arrayBuffer();
            return res.status;
          }),
        );
        for (const s of statuses) seen.set(s, (seen.get(s) ?? 0) + 1);
      }
      const bad = [...seen.keys()].filter((s) => !ALLOWED.has(s));
      expect(bad, `unexpected statuses: ${JSON.stringify(Object.fromEntries(seen))}`).toEqual([]);
      expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(BODIES);
      // The malformed bodies really were judged on several paths, not all rejected alike.
      expect(seen.get(400)).toBeGreaterThan(1000);
      expect(seen.get(413)).toBeGreaterThan(0);
      expect((seen.get(200) ?? 0) + (seen.get(207) ?? 0)).toBeGreaterThan(0);
      // No prototype was polluted.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      // Valid traffic afterwards is still accepted, on the fuzzed env and the normal one.
      const a = anonId();
      const after = await collect(
        [makeEvent(a), makeEvent(a, 'product.viewed', { properties: { productId: 'p1' } })],
        { env: fuzzEnv },
      );
      expect(after.status).toBe(200);
      expect(await after.json()).toMatchObject({ accepted: 2 });
      expect((await collect([makeEvent(anonId())])).status).toBe(200);
    } finally {
      queue.restore();
    }
  });
});
