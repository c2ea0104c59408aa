import { describe, expect, it } from 'vitest';
import { hash32 } from './index.ts';

describe('hash32', () => {
  // These values live on in deployed state: a person's holdout group, the shard holding a
  // product's co-visitation counts, the pairs a ProfileDO remembers. A changed hash would
  // move people between groups mid-experiment and strand every stored count.
  it('keeps the values deployed state was keyed by', () => {
    expect(hash32('')).toBe(2872998923);
    expect(hash32('a')).toBe(444641715);
    expect(hash32('personalization-v1\u0000anon:01J0000000000000000000000')).toBe(1000015699);
    expect(hash32('site-demo\u0000trail-jacket')).toBe(2234856327);
  });

  it('answers an unsigned 32-bit integer', () => {
    for (const text of ['', 'x', 'é', '\u{1F600}', 'a'.repeat(1000)]) {
      const h = hash32(text);
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
    }
  });
});
