/**
 * Error formatting: field paths written as JavaScript would write them, received values
 * described briefly, and zod issues turned into the wire protocol's words.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fieldErrorsFromZod, formatFieldError, formatPath, issueMessage } from './errors.ts';
import { describeValue } from './json.ts';

describe('formatPath', () => {
  it.each([
    [['batch', 3, 'properties', 'price'], 'batch[3].properties.price'],
    [['properties', 'a b'], 'properties["a b"]'],
    [['properties', 'naïve'], 'properties["naïve"]'],
    [['properties', 'say "hi"'], 'properties["say \\"hi\\""]'],
    [['properties', '1st'], 'properties["1st"]'],
    [['properties', '$ref', '_x'], 'properties.$ref._x'],
    [['batch', 0, 'properties', 'products', 2, 'productId'], 'batch[0].properties.products[2].productId'],
    [[0, 'x'], '[0].x'],
    [[], ''],
  ])('%j → %s', (path, expected) => {
    expect(formatPath(path)).toBe(expected);
  });
});

describe('formatFieldError', () => {
  it('writes "path: message", or only the message at the root', () => {
    expect(
      formatFieldError({
        path: 'batch[3].properties.price',
        message: 'expected number, received string "12,50"',
      }),
    ).toBe('batch[3].properties.price: expected number, received string "12,50"');
    expect(formatFieldError({ path: '', message: 'expected object, received null' })).toBe(
      'expected object, received null',
    );
  });
});

describe('describeValue', () => {
  it('describes values briefly, quoting and shortening strings', () => {
    expect(describeValue('12,50')).toBe('string "12,50"');
    expect(describeValue('x'.repeat(100))).toBe(`string "${'x'.repeat(40)}…"`);
    expect(describeValue(Number.NaN)).toBe('number NaN');
    expect(describeValue(null)).toBe('null');
    expect(describeValue([1])).toBe('array');
    expect(describeValue({ a: 1 })).toBe('object');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(() => 1)).toBe('function');
    expect(describeValue(1n)).toBe('bigint');
  });
});

describe('issueMessage', () => {
  const messages = (schema: z.ZodType, input: unknown): string[] => {
    const result = schema.safeParse(input, { error: issueMessage });
    return result.success ? [] : fieldErrorsFromZod(result.error.issues, input, ['x']).map(formatFieldError);
  };

  it('says what was expected and what was received', () => {
    expect(messages(z.object({ n: z.number() }), { n: '12,50' })).toEqual([
      'x.n: expected number, received string "12,50"',
    ]);
    expect(messages(z.object({ n: z.number() }), {})).toEqual(['x.n: required: expected number']);
    expect(messages(z.string().max(3), 'abcd')).toEqual(['x: string too long: 4 characters, at most 3']);
    expect(messages(z.string().min(2), 'a')).toEqual(['x: string too short: 1 characters, at least 2']);
    expect(messages(z.array(z.number()).max(1), [1, 2])).toEqual(['x: too many items: 2, at most 1']);
    expect(messages(z.array(z.number()).min(2), [1])).toEqual(['x: too few items: 1, at least 2']);
    expect(messages(z.number().int().lt(10), 10)).toEqual([
      'x: expected a number less than 10, received number 10',
    ]);
    expect(messages(z.literal(1), 2)).toEqual(['x: expected 1, received number 2']);
    expect(messages(z.enum(['a', 'b']), 'c')).toEqual(['x: expected one of "a", "b", received string "c"']);
    expect(messages(z.strictObject({}), { extra: 1, more: 2 })).toEqual(['x: unknown field(s): extra, more']);
    expect(messages(z.email(), 'nope')).toEqual(['x: invalid email, received string "nope"']);
  });

  it('keeps a message the schema sets itself, adding what was received', () => {
    expect(messages(z.string().regex(/^[A-Z]{3}$/, 'expected a currency code'), 'eur')).toEqual([
      'x: expected a currency code, received string "eur"',
    ]);
    expect(messages(z.array(z.number()).min(1, 'send at least one'), [])).toEqual(['x: send at least one']);
  });

  it('never shows the value of a credential (signature, key, token), only its kind and length', () => {
    const schema = z.object({
      userIdSignature: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits'),
      apiKey: z.string(),
      accessToken: z.enum(['a']),
      writeKey: z.string().min(1),
    });
    expect(
      messages(schema, {
        userIdSignature: 'secretsecret',
        apiKey: 12345,
        accessToken: 'tok_live',
        writeKey: '',
      }),
    ).toEqual([
      'x.userIdSignature: expected 64 hex digits, received a string of 12 characters (not shown: it is a credential)',
      'x.apiKey: expected string, received a number (not shown: it is a credential)',
      'x.accessToken: expected "a", received a string of 8 characters (not shown: it is a credential)',
      'x.writeKey: expected a non-empty string',
    ]);
  });
});
