/**
 * Validation of free-form JSON maps (`properties`, `traits`): depth, key count, string
 * lengths, finite numbers, well-formed Unicode, and no prototype-polluting keys. Written
 * by hand rather than as a recursive zod schema because it runs on every event.
 */
import { LIMITS } from './constants.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Keys that could pollute prototypes when a map is later merged or spread. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

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

interface Budget {
  keys: number;
}

/**
 * Checks that `value` is a JSON object map within the limits; pushes readable issues
 * (with paths relative to the map) and returns whether it is valid.
 */
export function checkJsonMap(value: unknown, issues: JsonIssue[], path: PropertyKey[] = []): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    issues.push({ path, message: `expected object, received ${describeValue(value)}` });
    return false;
  }
  const before = issues.length;
  checkValue(value, 1, path, issues, { keys: 0 });
  return issues.length === before;
}

function checkValue(
  value: unknown,
  depth: number,
  path: PropertyKey[],
  issues: JsonIssue[],
  budget: Budget,
): void {
  if (issues.length >= 20) return; // enough to act on; do not spend more CPU on a hostile body
  switch (typeof value) {
    case 'string':
      if (value.length > LIMITS.maxStringLength) {
        issues.push({
          path,
          message: `string too long: ${value.length} characters, at most ${LIMITS.maxStringLength}`,
        });
      } else if (!value.isWellFormed()) {
        issues.push({ path, message: 'string contains a lone surrogate (invalid Unicode)' });
      }
      return;
    case 'number':
      if (!Number.isFinite(value))
        issues.push({ path, message: `expected a finite number, received ${describeValue(value)}` });
      return;
    case 'boolean':
      return;
    case 'object': {
      if (value === null) return;
      if (depth > LIMITS.maxPropertyDepth) {
        issues.push({ path, message: `nested too deep: at most ${LIMITS.maxPropertyDepth} levels` });
        return;
      }
      if (Array.isArray(value)) {
        if (value.length > LIMITS.maxArrayItems) {
          issues.push({ path, message: `too many items: ${value.length}, at most ${LIMITS.maxArrayItems}` });
          return;
        }
        for (let i = 0; i < value.length; i++) checkValue(value[i], depth + 1, [...path, i], issues, budget);
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        issues.push({ path, message: `expected a plain JSON object, received ${describeValue(value)}` });
        return;
      }
      for (const key of Object.keys(value)) {
        budget.keys++;
        if (budget.keys > LIMITS.maxPropertyKeys) {
          issues.push({ path, message: `too many keys: at most ${LIMITS.maxPropertyKeys}` });
          return;
        }
        if (FORBIDDEN_KEYS.has(key)) {
          issues.push({ path: [...path, key], message: `key "${key}" is not allowed` });
          continue;
        }
        if (key.length > LIMITS.maxKeyLength || !key.isWellFormed()) {
          issues.push({
            path: [...path, key.slice(0, 40)],
            message: `invalid key: at most ${LIMITS.maxKeyLength} characters of valid Unicode`,
          });
          continue;
        }
        checkValue((value as Record<string, unknown>)[key], depth + 1, [...path, key], issues, budget);
      }
      return;
    }
    default:
      issues.push({ path, message: `expected a JSON value, received ${describeValue(value)}` });
  }
}
