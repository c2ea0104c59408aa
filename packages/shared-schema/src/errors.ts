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

/** Turns zod issues into field errors, with the received value described where it helps. */
export function fieldErrorsFromZod(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  prefix: readonly PropertyKey[],
): FieldError[] {
  return issues.map((issue) => {
    const path = formatPath([...prefix, ...issue.path]);
    let message = issue.message;
    if (issue.code === 'invalid_type') {
      const received = valueAt(input, issue.path);
      message =
        received === undefined
          ? `required: expected ${issue.expected}`
          : `expected ${issue.expected}, received ${describeValue(received)}`;
    } else if (issue.code === 'unrecognized_keys') {
      message = `unknown field(s): ${issue.keys.join(', ')}`;
    }
    return { path, message };
  });
}
