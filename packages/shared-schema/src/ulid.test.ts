import { describe, expect, it } from 'vitest';
import { ulidOf } from './ulid.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const digitsOf = (text: string) => [...text].map((char) => ALPHABET.indexOf(char));

describe('ulidOf', () => {
  it('encodes the ULID specification example: its time, then one character per digit', () => {
    // github.com/ulid/spec: 01ARYZ6S41 is 1469918176385 ms.
    expect(ulidOf(1469918176385, digitsOf('TSV4RRFFQ69G5FAV'))).toBe('01ARYZ6S41TSV4RRFFQ69G5FAV');
  });

  it('takes each digit’s low five bits, so raw bytes can be passed', () => {
    expect(ulidOf(0, [0, 31, 32, 255, 1000])).toBe('00000000000Z0Z8');
  });

  it('encodes the time as given: the order catch-up must match a Flow that does not clamp', () => {
    // 2^50 ms drops its top bit out of the ten characters rather than saturating at 7ZZZZZZZZZ.
    expect(ulidOf(2 ** 50, [])).toBe('0000000000');
    expect(ulidOf(2 ** 48 - 1, [])).toBe('7ZZZZZZZZZ');
  });
});
