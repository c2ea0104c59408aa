/**
 * JSON Schema (draft 2020-12) of the wire contract, for producers not written in
 * TypeScript. Generated from the zod schemas with `z.toJSONSchema`; what zod cannot
 * express (free-form JSON maps with depth and key limits, typed properties per event
 * name) is added here so the exported files say as much as the validator enforces.
 * The files are committed under json-schema/; `pnpm --filter @attune/shared-schema
 * json-schema` rewrites them and a test fails when they are stale.
 */
import { z } from 'zod';
import { ConsentConfigSchema } from './consent.ts';
import { EDGE_EVENT_NAMES, KNOWN_EVENT_NAMES, LIMITS, SCHEMA_VERSION } from './constants.ts';
import { CustomerActionSchema, JsonMapSchema } from './event.ts';
import { EVENT_PROPERTIES } from './events.ts';
import { CollectEnvelopeSchema } from './wire.ts';

type JsonSchema = Record<string, unknown>;

const BASE_ID = 'https://attune.dev/schema/';
const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];

/**
 * Free-form JSON maps as definitions, one per nesting level, so a plain JSON Schema
 * validator enforces LIMITS.maxPropertyDepth exactly: a map is depth 1, and no object or
 * array may sit deeper than the limit. (Key totals and UTF-8 bytes are checked by the
 * server only.)
 */
function jsonMapDefs(): Record<string, JsonSchema> {
  const defs: Record<string, JsonSchema> = {};
  const primitives: JsonSchema[] = [
    { type: 'string', maxLength: LIMITS.maxStringLength },
    { type: 'number' },
    { type: 'boolean' },
    { type: 'null' },
  ];
  const mapName = (depth: number) => (depth === 1 ? 'JsonMap' : `JsonMapAtDepth${depth}`);
  const valueName = (depth: number) => `JsonValueAtDepth${depth}`;
  for (let depth = 1; depth <= LIMITS.maxPropertyDepth; depth++) {
    defs[mapName(depth)] = {
      type: 'object',
      propertyNames: { maxLength: LIMITS.maxKeyLength, not: { enum: FORBIDDEN_KEYS } },
      additionalProperties: { $ref: `#/$defs/${valueName(depth + 1)}` },
      ...(depth === 1
        ? {
            description:
              `A free-form JSON object: at most ${LIMITS.maxPropertyDepth} levels deep (a flat map is 1), ` +
              `${LIMITS.maxPropertyKeys} keys in all, ${LIMITS.maxArrayItems} items per array, strings of ` +
              `at most ${LIMITS.maxStringLength} characters, keys of at most ${LIMITS.maxKeyLength}; ` +
              'finite numbers and well-formed Unicode only; "__proto__", "constructor" and "prototype" are not allowed as keys.',
          }
        : {}),
    };
  }
  // Extra keys of typed objects (a product's "brand") may hold any JSON value; the server
  // still applies the depth limit of the map they sit in.
  defs.JsonValue = {
    anyOf: [
      ...primitives,
      { type: 'array', maxItems: LIMITS.maxArrayItems, items: { $ref: '#/$defs/JsonValue' } },
      {
        type: 'object',
        propertyNames: { maxLength: LIMITS.maxKeyLength, not: { enum: FORBIDDEN_KEYS } },
        additionalProperties: { $ref: '#/$defs/JsonValue' },
      },
    ],
  };
  for (let depth = 2; depth <= LIMITS.maxPropertyDepth + 1; depth++) {
    defs[valueName(depth)] = {
      anyOf:
        depth <= LIMITS.maxPropertyDepth
          ? [
              ...primitives,
              {
                type: 'array',
                maxItems: LIMITS.maxArrayItems,
                items: { $ref: `#/$defs/${valueName(depth + 1)}` },
              },
              { $ref: `#/$defs/${mapName(depth)}` },
            ]
          : primitives,
    };
  }
  return defs;
}

/** z.toJSONSchema with Attune's choices: the input shape (what producers send), and JSON maps by reference. */
function toJsonSchema(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: (ctx) => (ctx.zodSchema === JsonMapSchema ? { $ref: '#/$defs/JsonMap' } : undefined),
    override: (ctx) => {
      // Extra properties of a known event are kept, but they are still JSON values within the limits.
      if (ctx.jsonSchema.type === 'object' && ctx.jsonSchema.additionalProperties !== undefined) {
        const extra = ctx.jsonSchema.additionalProperties;
        if (typeof extra === 'object' && Object.keys(extra).length === 0)
          ctx.jsonSchema.additionalProperties = { $ref: '#/$defs/JsonValue' };
      }
    },
  }) as JsonSchema;
  delete out.$schema;
  return out;
}

const FIELD_DESCRIPTIONS: Record<string, string> = {
  id: 'ULID made by the producer: the idempotency key end to end (retries reuse it).',
  type: 'The kind of event. page events are named "page.viewed", consent events "consent.updated".',
  name: `Dotted lower-case name. Known names (${KNOWN_EVENT_NAMES.join(', ')}) have typed properties; other names carry free properties. Reserved for the events the Worker makes itself, and refused from producers: ${EDGE_EVENT_NAMES.join(', ')}.`,
  timestamp: `When it happened, by the client clock (ISO 8601 with a time zone). At most ${LIMITS.maxFutureSkewMs / 3_600_000} hours in the future and ${LIMITS.maxEventAgeMs / 86_400_000} days in the past of the batch's sentAt when it has one (the same clock), else of the server clock.`,
  anonymousId: 'Browser- or device-scoped id of the person before they sign in.',
  userId: 'The site user id; trusted only with userIdSignature.',
  userIdSignature:
    "Made by the site's backend with its identity secret, hex in either case: HMAC-SHA256 of the userId, or, on a site taking expiring signatures, <expiry>.<hex> with the HMAC-SHA256 of <expiry>.<userId> (<expiry> a Unix time in seconds).",
  sessionId: 'Id of the visit, as the producer defines it.',
  context: 'Where the event happened: page, locale, timezone, screen, campaign (utm_*), library, consent.',
  properties: 'What happened. Typed for known names (extra keys are kept); free-form for others.',
  traits: 'What is known about the person (identify events).',
  schemaVersion: `The envelope version. Send ${SCHEMA_VERSION}; older versions (0 = Segment spec) are upcast by the server.`,
};

/** A JSON Schema if/then rule. */
function ifThen(condition: JsonSchema, consequence: JsonSchema): JsonSchema {
  // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword; this object is never awaited
  return { if: condition, then: consequence };
}

/** The CustomerAction v1 envelope, with typed properties per known event name. */
function customerActionBody(): JsonSchema {
  const schema = toJsonSchema(CustomerActionSchema);
  const props = schema.properties as Record<string, JsonSchema>;
  for (const [field, description] of Object.entries(FIELD_DESCRIPTIONS)) {
    const target = props[field];
    if (target) target.description = description;
  }
  schema.allOf = [
    ...KNOWN_EVENT_NAMES.map((name) =>
      ifThen(
        { properties: { name: { const: name } }, required: ['name'] },
        { properties: { properties: toJsonSchema(EVENT_PROPERTIES[name]) } },
      ),
    ),
    ifThen(
      { properties: { type: { const: 'page' } }, required: ['type'] },
      { properties: { name: { const: 'page.viewed' } } },
    ),
    ifThen(
      { properties: { type: { const: 'consent' } }, required: ['type'] },
      { properties: { name: { const: 'consent.updated' } } },
    ),
  ];
  schema.dependentRequired = { userIdSignature: ['userId'] };
  return schema;
}

/** Every exported schema by file name, as the committed files hold them. */
export function buildJsonSchemas(): Record<string, JsonSchema> {
  const customerAction = customerActionBody();
  const collect = toJsonSchema(CollectEnvelopeSchema);
  const collectProps = collect.properties as Record<string, JsonSchema>;
  collectProps.batch = {
    type: 'array',
    minItems: 1,
    maxItems: LIMITS.maxBatchEvents,
    items: { $ref: '#/$defs/CustomerAction' },
    description: `Up to ${LIMITS.maxBatchEvents} events. Each is checked on its own: valid events are accepted, invalid ones reported by index.`,
  };
  collectProps.writeKey = { ...collectProps.writeKey, description: "The site's public write key." };
  collectProps.sentAt = {
    ...collectProps.sentAt,
    description:
      "When the batch left the producer (ISO 8601), by the clock that stamped its events: the server reads their time window on this clock and moves their times by this clock's offset from its own, so a device clock that is days off loses nothing.",
  };

  return {
    'customer-action.v1.schema.json': {
      $schema: DRAFT,
      $id: `${BASE_ID}customer-action.v1.schema.json`,
      title: 'CustomerAction (schema v1)',
      description: `One Attune event. Events over ${LIMITS.maxEventBytes} bytes of UTF-8 JSON are rejected.`,
      ...customerAction,
      $defs: jsonMapDefs(),
    },
    'collect-request.schema.json': {
      $schema: DRAFT,
      $id: `${BASE_ID}collect-request.schema.json`,
      title: 'POST /v1/collect request body',
      description:
        `Sent as text/plain JSON (no CORS preflight, beacon-safe), at most ${LIMITS.maxBatchBytes} bytes. ` +
        'Responses: 200/207 with { accepted, rejected: [{ index, id, errors: [{ path, message }] }] }; ' +
        '400 unreadable or invalid envelope, 401 unknown write key, 403 origin not allowed, 413 too large, 429 rate limited.',
      ...collect,
      $defs: { CustomerAction: customerAction, ...jsonMapDefs() },
    },
    'consent-config.schema.json': {
      $schema: DRAFT,
      $id: `${BASE_ID}consent-config.schema.json`,
      title: 'GET /v1/config consent configuration',
      description:
        'The consent categories a site offers and its policy version; a new policyVersion asks people again.',
      ...toJsonSchema(ConsentConfigSchema),
    },
  };
}

/** A schema as its committed file holds it (stable key order, trailing newline). */
export function serializeJsonSchema(schema: JsonSchema): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
