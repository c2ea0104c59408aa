/**
 * The committed JSON Schema files: current with the zod schemas, and meaningful — a
 * standard JSON Schema validator (Ajv, draft 2020-12) accepts what validateEvent accepts
 * and rejects the mistakes the limits and the known-event registry exist to catch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_CONFIG } from './consent.ts';
import { collectRequest, customerAction, NOW } from './event.arbitraries.ts';
import { validateEvent } from './event.ts';
import { buildJsonSchemas, serializeJsonSchema } from './json-schema.ts';

const DIR = join(import.meta.dirname, '..', 'json-schema');
const fresh = buildJsonSchemas();
const committed = (file: string): string => readFileSync(join(DIR, file), 'utf8');

describe('committed JSON Schema files', () => {
  it.each(Object.keys(fresh))('%s is current', (file) => {
    const schema = fresh[file];
    if (!schema) throw new Error(file);
    expect(
      committed(file),
      `json-schema/${file} is out of date with the zod schemas. Regenerate it with ` +
        '`pnpm --filter @attune/shared-schema json-schema` and commit the result.',
    ).toBe(serializeJsonSchema(schema));
  });

  it('exports at least the event and the collect request', () => {
    expect(Object.keys(fresh)).toEqual(
      expect.arrayContaining(['customer-action.v1.schema.json', 'collect-request.schema.json']),
    );
  });
});

describe('the JSON Schema agrees with the validator', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  const validateAction = ajv.compile(JSON.parse(committed('customer-action.v1.schema.json')));
  const validateCollect = ajv.compile(JSON.parse(committed('collect-request.schema.json')));
  const validateConfig = ajv.compile(JSON.parse(committed('consent-config.schema.json')));

  const base = {
    id: '01JDQ3Z8Y9K2M4N6P8R0S2T4V6',
    type: 'track',
    name: 'order.completed',
    timestamp: '2026-11-26T11:00:00.000Z',
    anonymousId: 'anon-1',
    properties: { orderId: 'o-1', total: 20, products: [{ productId: 'p-1', brand: 'Attune' }] },
    schemaVersion: 1,
  };
  const schemaAccepts = (event: unknown): boolean => validateAction(event) === true;

  it('accepts every event validateEvent accepts', () => {
    fc.assert(
      fc.property(customerAction, (event) => {
        expect(validateEvent(event, { now: NOW }).ok).toBe(true);
        if (!schemaAccepts(event)) throw new Error(JSON.stringify(validateAction.errors));
      }),
      { numRuns: 200 },
    );
    expect(schemaAccepts(base)).toBe(true);
  });

  it('accepts every valid collect body', () => {
    fc.assert(
      fc.property(collectRequest, (request) => {
        if (validateCollect(request) !== true) throw new Error(JSON.stringify(validateCollect.errors));
      }),
      { numRuns: 50 },
    );
  });

  const nest = (levels: number): Record<string, unknown> => {
    let v: Record<string, unknown> = {};
    for (let i = levels; i > 0; i--) v = { [`l${i}`]: v };
    return v;
  };

  it.each([
    ['a bad ULID', { ...base, id: 'not-a-ulid' }],
    ['a misspelt field', { ...base, anonymousID: 'x' }],
    ['an order without a total', { ...base, properties: { orderId: 'o-1' } }],
    [
      'a product without an id',
      { ...base, properties: { orderId: 'o', total: 1, products: [{ sku: 'x' }] } },
    ],
    ['a price as text', { ...base, name: 'product.viewed', properties: { productId: 'p', price: '12,50' } }],
    ['a page event not named page.viewed', { ...base, type: 'page' }],
    ['a signature without a userId', { ...base, userIdSignature: 'a'.repeat(64) }],
    ['properties nested too deep', { ...base, name: 'x.y', properties: nest(5) }],
    ['a string over the limit', { ...base, name: 'x.y', properties: { s: 'x'.repeat(4097) } }],
    ['a __proto__ key', { ...base, name: 'x.y', properties: JSON.parse('{"__proto__":{"a":1}}') }],
    ['a future schema version', { ...base, schemaVersion: 2 }],
  ])('rejects %s, as validateEvent does', (_, event) => {
    expect(validateEvent(event, { now: NOW }).ok).toBe(false);
    expect(schemaAccepts(event)).toBe(false);
  });

  it('accepts the deepest nesting the limit allows', () => {
    const event = { ...base, name: 'x.y', properties: nest(4) };
    expect(validateEvent(event, { now: NOW }).ok).toBe(true);
    expect(schemaAccepts(event)).toBe(true);
  });

  it('rejects an empty batch and a batch over 100 events', () => {
    expect(validateCollect({ writeKey: 'wk', batch: [] })).toBe(false);
    expect(validateCollect({ writeKey: 'wk', batch: Array.from({ length: 101 }, () => base) })).toBe(false);
    expect(validateCollect({ writeKey: 'wk', batch: [base] })).toBe(true);
  });

  it('describes the consent configuration', () => {
    expect(validateConfig(DEFAULT_CONSENT_CONFIG)).toBe(true);
    expect(validateConfig({ policyVersion: '', categories: [] })).toBe(false);
  });
});
