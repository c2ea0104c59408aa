/**
 * Readable validation errors: `batch[3].properties.price: expected number, received
 * string "12,50"`. Every error a producer meets names the field path and what to fix.
 */
import type { z } from 'zod';
import { describeValue } from './json.ts';

export interface FieldError {
  /** Where, from the request body: `batch[3].properties.price`. */
  path: string;
  /** What was wrong: `expected number, received string "12,50"`. */
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Formats a path as JavaScript would write it: `batch[3].context.page.url`, `properties["a b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      out += IDENTIFIER.test(key) ? (out ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

/** Zod's type names as a producer reads them. */
function typeName(expected: string): string {
  return expected === 'int' ? 'integer' : expected;
}

function describeBound(origin: string, bound: number | bigint, inclusive: boolean, upper: boolean): string {
  const word = upper ? (inclusive ? 'at most' : 'less than') : inclusive ? 'at least' : 'greater than';
  return `${origin === 'int' ? 'an integer' : 'a number'} ${word} ${String(bound)}`;
}

/**
 * A zod error map that says what was expected and what was received, in the words of
 * the wire protocol. Pass it as `safeParse(x, { error: issueMessage })`; a message set on
 * a schema (e.g. "expected a ULID") still wins. Returns undefined to keep zod's default.
 */
export function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const input: unknown = issue.input;
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined
        ? `required: expected ${typeName(issue.expected)}`
        : `expected ${typeName(issue.expected)}, received ${describeValue(input)}`;
    case 'too_big':
      if (issue.origin === 'string' && typeof input === 'string')
        return `string too long: ${input.length} characters, at most ${String(issue.maximum)}`;
      if (issue.origin === 'array' && Array.isArray(input))
        return `too many items: ${input.length}, at most ${String(issue.maximum)}`;
      if (issue.origin === 'number' || issue.origin === 'int')
        return `expected ${describeBound(issue.origin, issue.maximum, issue.inclusive !== false, true)}, received ${describeValue(input)}`;
      return undefined;
    case 'too_small':
      if (issue.origin === 'string' && typeof input === 'string')
        return Number(issue.minimum) === 1
          ? 'expected a non-empty string'
          : `string too short: ${input.length} characters, at least ${String(issue.minimum)}`;
      if (issue.origin === 'array' && Array.isArray(input))
        return `too few items: ${input.length}, at least ${String(issue.minimum)}`;
      if (issue.origin === 'number' || issue.origin === 'int')
        return `expected ${describeBound(issue.origin, issue.minimum, issue.inclusive !== false, false)}, received ${describeValue(input)}`;
      return undefined;
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${JSON.stringify(issue.values[0])}, received ${describeValue(input)}`
        : `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, received ${describeValue(input)}`;
    case 'invalid_format':
      if (issue.format === 'datetime')
        return `expected an ISO 8601 date-time with a time zone, like "2026-11-26T09:30:00.000Z", received ${describeValue(input)}`;
      return `invalid ${issue.format}, received ${describeValue(input)}`;
    case 'unrecognized_keys':
      return `unknown field(s): ${issue.keys.join(', ')}`;
    default:
      return undefined;
  }
}

/** One field error as a line of text: `batch[3].properties.price: expected number, received string "12,50"`. */
export function formatFieldError(error: FieldError): string {
  return error.path ? `${error.path}: ${error.message}` : error.message;
}

/**
 * Fields that hold credentials (the identity signature, write keys, tokens): an error about
 * one says what kind of value came, never its characters. An error response can be kept by
 * proxies and loggers between the sender and the Worker, and 40 characters of a signature
 * or a server key are most of it.
 */
const CREDENTIAL_FIELD = /(signature|secret|token|password|writekey|apikey)$/i;

function isCredential(path: readonly PropertyKey[]): boolean {
  const field = path.at(-1);
  return typeof field === 'string' && CREDENTIAL_FIELD.test(field);
}

/** A credential as an error shows it: its kind and length only. */
function describeCredential(value: unknown): string {
  const kind =
    typeof value === 'string'
      ? `a string of ${value.length} characters`
      : value === null
        ? 'null'
        : Array.isArray(value)
          ? 'an array'
          : typeof value === 'object'
            ? 'an object'
            : `a ${typeof value}`;
  return `${kind} (not shown: it is a credential)`;
}

/** Turns zod issues into field errors, with the received value described where it helps. */
export function fieldErrorsFromZod(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  prefix: readonly PropertyKey[],
): FieldError[] {
  return issues.map((issue) => {
    const path = formatPath([...prefix, ...issue.path]);
    if (isCredential(issue.path)) {
      // What the error map wrote after "received" is replaced; a format error (whose message
      // the schema sets) gets it as any field's would. Other messages show no value.
      const said = issue.message.split(', received ')[0] ?? issue.message;
      const value = valueAt(input, issue.path);
      const shown = said !== issue.message || issue.code === 'invalid_format';
      return {
        path,
        message: shown && value !== undefined ? `${said}, received ${describeCredential(value)}` : said,
      };
    }
    let message = issue.message;
    if (issue.code === 'invalid_type') {
      const received = valueAt(input, issue.path);
      message =
        received === undefined
          ? `required: expected ${typeName(issue.expected)}`
          : `expected ${typeName(issue.expected)}, received ${describeValue(received)}`;
    } else if (issue.code === 'unrecognized_keys') {
      message = `unknown field(s): ${issue.keys.join(', ')}`;
    } else if (issue.code === 'invalid_format' && !message.includes('received')) {
      // A schema's own message ("expected a ULID …") says what is wanted; add what came.
      message = `${message}, received ${describeValue(valueAt(input, issue.path))}`;
    }
    return { path, message };
  });
}
