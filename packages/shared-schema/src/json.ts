/**
 * Validation of free-form JSON maps (`properties`, `traits`): depth, key count, string
 * lengths, finite numbers, well-formed Unicode, and no prototype-polluting keys. Written
 * by hand rather than as a recursive zod schema because it runs on every event.
 */
import { LIMITS } from './constants.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Keys that could pollute prototypes when a map is later merged or spread. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Checked on every key: the length test spares the set lookup for almost all of them. */
function isForbiddenKey(key: string): boolean {
  return (key.length === 9 || key.length === 11) && FORBIDDEN_KEYS.has(key);
}

export interface JsonIssue {
  path: PropertyKey[];
  message: string;
}

/** Describes a received value for error messages: `string "12,50"`, `number NaN`, `array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
      return `string ${JSON.stringify(shown)}`;
    }
    case 'number':
      return `number ${String(value)}`;
    case 'object':
      return 'object';
    default:
      return typeof value;
  }
}

interface Walk {
  issues: JsonIssue[];
  /** The path of the value being checked; copied only when an issue is reported. */
  path: PropertyKey[];
  keys: number;
  /** An upper bound of the map's UTF-8 JSON bytes, so most events need no exact count. */
  bytesBound: number;
}

/** At most this many UTF-8 bytes per UTF-16 unit in JSON text (a `\u001f` escape is 6). */
const MAX_BYTES_PER_UNIT = 6;
/** At most this many bytes for a number, boolean or null ("-1.2345678901234567e-308"). */
const MAX_SCALAR_BYTES = 24;

/**
 * Checks that `value` is a JSON object map within the limits; pushes readable issues
 * (with paths relative to the map) and returns whether it is valid.
 */
export function checkJsonMap(value: unknown, issues: JsonIssue[], path: PropertyKey[] = []): boolean {
  return checkJsonMapBytes(value, issues, path) >= 0;
}

/**
 * Like checkJsonMap, and returns an upper bound of the map's serialized size in bytes
 * (or -1 when it is not valid). Internal to the package: validateEvent uses the bound to
 * skip counting the bytes of events that cannot be near the limit.
 */
export function checkJsonMapBytes(value: unknown, issues: JsonIssue[], path: PropertyKey[] = []): number {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    issues.push({ path, message: `expected object, received ${describeValue(value)}` });
    return -1;
  }
  const before = issues.length;
  const walk: Walk = { issues, path: [...path], keys: 0, bytesBound: 0 };
  checkValue(value, 1, walk);
  return issues.length === before ? walk.bytesBound : -1;
}

function report(walk: Walk, message: string, key?: PropertyKey): void {
  const path = walk.path.slice();
  if (key !== undefined) path.push(key);
  walk.issues.push({ path, message });
}

function checkValue(value: unknown, depth: number, walk: Walk): void {
  if (walk.issues.length >= 20) return; // enough to act on; do not spend more CPU on a hostile body
  switch (typeof value) {
    case 'string':
      walk.bytesBound += 2 + MAX_BYTES_PER_UNIT * value.length;
      if (value.length > LIMITS.maxStringLength) {
        report(walk, `string too long: ${value.length} characters, at most ${LIMITS.maxStringLength}`);
      } else if (!value.isWellFormed()) {
        report(walk, 'string contains a lone surrogate (invalid Unicode)');
      }
      return;
    case 'number':
      walk.bytesBound += MAX_SCALAR_BYTES;
      if (!Number.isFinite(value)) report(walk, `expected a finite number, received ${describeValue(value)}`);
      return;
    case 'boolean':
      walk.bytesBound += MAX_SCALAR_BYTES;
      return;
    case 'object': {
      walk.bytesBound += MAX_SCALAR_BYTES; // brackets, or null
      if (value === null) return;
      if (depth > LIMITS.maxPropertyDepth) {
        report(walk, `nested too deep: at most ${LIMITS.maxPropertyDepth} levels`);
        return;
      }
      const path = walk.path;
      if (Array.isArray(value)) {
        if (value.length > LIMITS.maxArrayItems) {
          report(walk, `too many items: ${value.length}, at most ${LIMITS.maxArrayItems}`);
          return;
        }
        for (let i = 0; i < value.length; i++) {
          walk.bytesBound += 1; // comma
          path.push(i);
          checkValue(value[i], depth + 1, walk);
          path.pop();
        }
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        report(walk, `expected a plain JSON object, received ${describeValue(value)}`);
        return;
      }
      // for-in (with hasOwn) rather than Object.keys: V8 serves it from the enum cache, no array per object.
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        walk.keys++;
        if (walk.keys > LIMITS.maxPropertyKeys) {
          report(walk, `too many keys: at most ${LIMITS.maxPropertyKeys}`);
          return;
        }
        if (isForbiddenKey(key)) {
          report(walk, `key "${key}" is not allowed`, key);
          continue;
        }
        if (key.length > LIMITS.maxKeyLength || !key.isWellFormed()) {
          report(
            walk,
            `invalid key: at most ${LIMITS.maxKeyLength} characters of valid Unicode`,
            key.slice(0, 40),
          );
          continue;
        }
        walk.bytesBound += 4 + MAX_BYTES_PER_UNIT * key.length; // "key":  and a comma
        path.push(key);
        checkValue((value as Record<string, unknown>)[key], depth + 1, walk);
        path.pop();
      }
      return;
    }
    default:
      report(walk, `expected a JSON value, received ${describeValue(value)}`);
  }
}

/**
 * The UTF-8 byte length of `JSON.stringify(value)`, counted without building the string.
 * For values already checked to be JSON (finite numbers, well-formed strings, plain
 * objects and arrays, no cycles); `undefined` members are skipped as JSON.stringify does.
 */
export function jsonByteLength(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return stringByteLength(value);
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4; // NaN/Infinity serialize as null
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (Array.isArray(value)) {
        let n = 2 + Math.max(0, value.length - 1); // brackets and commas
        for (const item of value)
          n +=
            item === undefined || typeof item === 'function' || typeof item === 'symbol'
              ? 4
              : jsonByteLength(item);
        return n;
      }
      let n = 2;
      let members = 0;
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        n += stringByteLength(key) + 1 + jsonByteLength(item); // "key":value
        members++;
      }
      return n + Math.max(0, members - 1);
    }
    default:
      return 0;
  }
}

/** Printable ASCII that JSON writes as is (no quote, no backslash): one byte per character. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Bytes of a JSON string literal in UTF-8, quotes and escapes included. */
function stringByteLength(s: string): number {
  // Most strings are plain ASCII; the regex engine answers that far faster than a JS loop.
  if (PLAIN_ASCII.test(s)) return s.length + 2;
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d)
        n += 2;
      else if (c < 0x20)
        n += 6; // \u00XX
      else n += 1;
    } else if (c < 0x800) {
      n += 2;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 4;
        i++;
      } else n += 6; // JSON.stringify escapes a lone surrogate as \uXXXX
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      n += 6;
    } else {
      n += 3;
    }
  }
  return n;
}
