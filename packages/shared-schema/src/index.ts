/**
 * @attune/shared-schema — the one event model every Attune part speaks: the
 * CustomerAction envelope and its registry of known events, the consent model, the wire
 * protocol, limits, schema versions with upcasters, and queue messages. Browser code
 * should import `@attune/shared-schema/constants` instead, which carries no zod.
 */

export * from './consent.ts';
export * from './constants.ts';
export * from './decide.ts';
export * from './errors.ts';
export * from './event.ts';
export * from './events.ts';
export { checkJsonMap, describeValue, type JsonIssue } from './json.ts';
export * from './queue.ts';
export * from './ulid.ts';
export * from './versions.ts';
export * from './wire.ts';
