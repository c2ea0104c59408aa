import { ULID_PATTERN } from '@attune/shared-schema/constants';
import { decodeTime, isValid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { ulid } from './ids.ts';

describe('ulid', () => {
  it('makes ULIDs the reference implementation and the wire schema accept, with the given time', () => {
    const now = Date.parse('2026-11-26T06:00:00.123Z');
    const id = ulid(now);
    expect(id).toMatch(ULID_PATTERN);
    expect(isValid(id)).toBe(true);
    expect(decodeTime(id)).toBe(now);
  });

  it('sorts ids made in the same millisecond in call order (the offline store replays by id)', () => {
    const now = Date.now() + 10_000;
    const ids = Array.from({ length: 500 }, () => ulid(now));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(500);
  });

  it('sorts ids by time across milliseconds', () => {
    const now = Date.now() + 20_000;
    expect(ulid(now) < ulid(now + 1)).toBe(true);
  });
});
