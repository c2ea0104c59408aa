/**
 * The collect wire protocol: what a producer gets back for unreadable, oversize and
 * partially invalid bodies. Every case returns a status and a readable body; none throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COLLECT_STATUS, LIMITS } from './constants.ts';
import { formatFieldError } from './errors.ts';
import { collectRequest, NOW } from './event.arbitraries.ts';
import { type CollectParse, parseCollectBody, parseCollectRequest } from './wire.ts';

const event = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: `01JDQ3Z8Y9K2M4N6P8R0S2T${String(i).padStart(3, '0')}`,
  type: 'track',
  name: 'product.viewed',
  timestamp: '2026-11-26T11:00:00.000Z',
  anonymousId: 'anon-1',
  properties: { productId: `p-${i}`, price: 19.9 },
  schemaVersion: 1,
  ...extra,
});
const body = (batch: unknown[], extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ writeKey: 'wk_test', sentAt: '2026-11-26T11:00:01.000Z', batch, ...extra });
const parse = (text: string): CollectParse => parseCollectBody(text, { now: NOW });

function failure(result: CollectParse): { status: number; code: string; message: string; errors: string[] } {
  if (result.ok) throw new Error('expected the body to be refused');
  const { code, message, errors = [] } = result.body.error;
  return { status: result.status, code, message, errors: errors.map(formatFieldError) };
}

describe('a valid body', () => {
  it('accepts every event, with its index', () => {
    const result = parse(body([event(0), event(1)]));
    expect(result).toMatchObject({ ok: true, writeKey: 'wk_test', sentAt: '2026-11-26T11:00:01.000Z' });
    if (!result.ok) return;
    expect(result.events.map((e) => [e.index, e.event.id])).toEqual([
      [0, event(0).id],
      [1, event(1).id],
    ]);
    expect(result.rejected).toEqual([]);
  });

  it('accepts Segment-shaped (v0) events in the same batch, upcast to v1', () => {
    const segment = {
      type: 'track',
      event: 'Product Added',
      messageId: 'ajs-1',
      anonymousId: 'anon-1',
      timestamp: '2026-11-26T10:59:00Z',
      properties: { product_id: 'p-9', price: 5, quantity: 2 },
    };
    const result = parse(body([event(0), segment]));
    if (!result.ok) throw new Error('refused');
    expect(result.events[1]?.event).toMatchObject({
      name: 'cart.item.added',
      schemaVersion: 1,
      properties: { productId: 'p-9' },
    });
  });
});

describe('partial success', () => {
  it('reports each invalid event by index and id, with readable reasons, and keeps the rest', () => {
    const batch = [
      event(0),
      event(1, { timestamp: 'yesterday' }),
      event(2),
      event(3, { properties: { productId: 'p-3', price: '12,50' } }),
      'not an event',
    ];
    const result = parse(body(batch));
    if (!result.ok) throw new Error('refused');
    expect(result.events.map((e) => e.index)).toEqual([0, 2]);
    expect(result.rejected).toEqual([
      {
        index: 1,
        id: event(1).id,
        errors: [
          {
            path: 'batch[1].timestamp',
            message:
              'expected an ISO 8601 date-time with a time zone, like "2026-11-26T09:30:00.000Z", received string "yesterday"',
          },
        ],
      },
      {
        index: 3,
        id: event(3).id,
        errors: [{ path: 'batch[3].properties.price', message: 'expected number, received string "12,50"' }],
      },
      {
        index: 4,
        errors: [{ path: 'batch[4]', message: 'expected an event object, received string "not an event"' }],
      },
    ]);
    expect(result.rejected.flatMap((r) => r.errors).map(formatFieldError)).toContain(
      'batch[3].properties.price: expected number, received string "12,50"',
    );
  });

  it('keeps a batch from a device whose clock is days ahead: its sentAt is on the same clock', () => {
    const ahead = { timestamp: '2026-11-29T11:00:00.000Z' };
    const batch = [event(0, ahead), event(1, ahead)];
    const read = parse(body(batch, { sentAt: '2026-11-29T11:00:01.000Z' }));
    expect(read.ok && read.events.map((e) => e.index)).toEqual([0, 1]);
    // Without the sentAt nothing says which clock is wrong: refused, as before.
    const { sentAt: _omitted, ...noSentAt } = JSON.parse(body(batch)) as Record<string, unknown>;
    const unread = parse(JSON.stringify(noSentAt));
    expect(unread.ok && unread.rejected.map((r) => r.errors[0]?.message)).toEqual([
      'timestamp 2026-11-29T11:00:00.000Z is more than 24 hours in the future; check the device clock',
      'timestamp 2026-11-29T11:00:00.000Z is more than 24 hours in the future; check the device clock',
    ]);
  });

  it('does not echo an id that is not a readable string', () => {
    const result = parse(body([event(0, { id: { $gt: '' } }), event(1, { id: 'x'.repeat(500), type: 9 })]));
    if (!result.ok) throw new Error('refused');
    expect(result.rejected[0]).not.toHaveProperty('id');
    expect(result.rejected[1]?.id).toBe('x'.repeat(64));
  });
});

describe('unreadable bodies', () => {
  it.each([['{"writeKey":'], [''], ['{writeKey: "k"}'], ['\u0000'], ["{'batch':[]}"]])(
    'refuses invalid JSON %j with 400',
    (text) => {
      expect(failure(parse(text))).toEqual({
        status: 400,
        code: 'invalid_json',
        message: 'request body is not valid JSON',
        errors: [],
      });
    },
  );

  it.each([
    ['null', 'null'],
    ['"hello"', 'string "hello"'],
    ['42', 'number 42'],
    ['true', 'boolean'],
    ['[]', 'array'],
  ])('refuses the non-object body %s with 400', (text, received) => {
    expect(failure(parse(text))).toEqual({
      status: 400,
      code: 'invalid_envelope',
      message: 'expected { writeKey, sentAt, batch: [...] }',
      errors: [`expected object, received ${received}`],
    });
  });

  it('names each envelope field that is wrong', () => {
    expect(failure(parse('{"batch":{}}')).errors).toEqual([
      'writeKey: required: expected string',
      'batch: expected array, received object',
    ]);
    expect(failure(parse(body([], { sentAt: 'now' }))).errors).toEqual([
      'sentAt: expected an ISO 8601 date-time with a time zone, like "2026-11-26T09:30:00.000Z", received string "now"',
      'batch: batch is empty: send at least one event',
    ]);
    expect(failure(parse(body([event(0)], { writeKey: '' }))).errors).toEqual([
      'writeKey: expected a non-empty string',
    ]);
    expect(
      failure(parse(body([event(0)], { writeKey: 'wk_X' }).replace('wk_X', 'wk_\\ud800'))).errors,
    ).toEqual(['writeKey: string contains a lone surrogate (invalid Unicode)']);
  });

  it('refuses a body that is not text at all (in-process callers)', () => {
    expect(failure(parseCollectBody(undefined as unknown as string))).toMatchObject({
      status: 400,
      code: 'invalid_json',
    });
  });

  it('survives JSON nested far deeper than any limit', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const result = failure(parse(deep));
    expect(result.status).toBe(400);
  });

  it('reads lone surrogates escaped in JSON text as errors, not crashes', () => {
    const text = body([event(0, { properties: { productId: 'p', note: 'x' } })]).replace('"x"', '"\\udead"');
    const result = parse(text);
    if (!result.ok) throw new Error('refused');
    expect(result.rejected[0]?.errors.map(formatFieldError)).toEqual([
      'batch[0].properties.note: string contains a lone surrogate (invalid Unicode)',
    ]);
  });
});

describe('too large', () => {
  it(`accepts ${LIMITS.maxBatchEvents} events and refuses ${LIMITS.maxBatchEvents + 1} with 413`, () => {
    const full = Array.from({ length: LIMITS.maxBatchEvents }, (_, i) => event(i));
    const accepted = parse(body(full));
    expect(accepted.ok && accepted.events.length).toBe(100);
    expect(failure(parse(body([...full, event(100)])))).toEqual({
      status: COLLECT_STATUS.tooLarge,
      code: 'too_large',
      message: 'batch has 101 events; at most 100. Send smaller batches.',
      errors: [],
    });
  });

  it('refuses a body over 512 KB with 413, counting UTF-8 bytes', () => {
    // 60 events of 3,000 "€" (9,000 bytes each): 180,000 characters but over 540,000 bytes.
    const batch = Array.from({ length: 60 }, (_, i) =>
      event(i, { properties: { productId: 'p', note: '€'.repeat(3000) } }),
    );
    const text = body(batch);
    expect(text.length).toBeLessThan(LIMITS.maxBatchBytes);
    const bytes = new TextEncoder().encode(text).byteLength;
    expect(failure(parse(text))).toEqual({
      status: 413,
      code: 'too_large',
      message: `request body is ${bytes} bytes; at most 524288. Send smaller batches.`,
      errors: [],
    });
  });

  it('refuses a body of more than 512 K characters without parsing it', () => {
    const text = body([event(0, { properties: { productId: 'p', pad: 'a'.repeat(600_000) } })]);
    expect(failure(parse(text))).toMatchObject({ status: 413, code: 'too_large' });
    expect(failure(parse(`{${' '.repeat(600_000)}`))).toMatchObject({ status: 413, code: 'too_large' });
  });

  it('accepts a body just under the byte limit', () => {
    const batch = Array.from({ length: 20 }, (_, i) =>
      event(i, { properties: { productId: 'p', note: 'n'.repeat(4096), more: 'm'.repeat(4096) } }),
    );
    const text = body(batch);
    expect(text.length).toBeLessThan(LIMITS.maxBatchBytes);
    const result = parse(text);
    expect(result.ok && result.events.length).toBe(20);
  });
});

describe('in-process request objects', () => {
  it('turns a throwing getter on the envelope into a 400', () => {
    const request = { writeKey: 'wk_test' };
    Object.defineProperty(request, 'batch', {
      enumerable: true,
      get() {
        throw new Error('batch exploded');
      },
    });
    expect(failure(parseCollectRequest(request))).toEqual({
      status: 400,
      code: 'invalid_envelope',
      message: 'unreadable request: batch exploded',
      errors: [],
    });
  });

  it('rejects one event with a throwing getter and keeps the others', () => {
    const bad = event(1);
    Object.defineProperty(bad, 'id', {
      enumerable: true,
      get() {
        throw new Error('id exploded');
      },
    });
    const result = parseCollectRequest({ writeKey: 'wk', batch: [event(0), bad] }, { now: NOW });
    if (!result.ok) throw new Error('refused');
    expect(result.events.map((e) => e.index)).toEqual([0]);
    expect(result.rejected).toEqual([
      { index: 1, errors: [{ path: 'batch[1]', message: 'unreadable event: id exploded' }] },
    ]);
  });

  it('handles a cyclic request object', () => {
    const request: Record<string, unknown> = { writeKey: 'wk' };
    request.batch = [request];
    const result = parseCollectRequest(request, { now: NOW });
    if (!result.ok) throw new Error('refused');
    expect(result.rejected[0]?.errors.map(formatFieldError)).toEqual([
      'batch[0].schemaVersion: required: expected 1',
    ]);
  });
});

describe('never throws', () => {
  it('on any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), (text) => {
        expect(() => parse(text)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });

  it('on any value, or a valid body with one field replaced by anything', () => {
    const anyValue = fc.anything({
      withBigInt: true,
      withMap: true,
      withDate: true,
      withNullPrototype: true,
    });
    const mutated = fc
      .tuple(collectRequest, fc.constantFrom('writeKey', 'sentAt', 'batch'), anyValue)
      .map(([request, field, value]) => ({ ...request, [field]: value }));
    fc.assert(
      fc.property(fc.oneof(anyValue, mutated), (request) => {
        let result: CollectParse | undefined;
        expect(() => {
          result = parseCollectRequest(request, { now: NOW });
        }).not.toThrow();
        if (result && !result.ok) expect([400, 413]).toContain(result.status);
      }),
      { numRuns: 300 },
    );
  });
});
