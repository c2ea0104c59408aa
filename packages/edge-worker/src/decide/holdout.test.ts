import { describe, expect, it } from 'vitest';
import { isInHoldout } from './holdout.ts';

describe('holdout', () => {
  it('puts the same person in the same group every time', () => {
    for (let i = 0; i < 1000; i++) {
      const key = `anon:visitor-${i}`;
      expect(isInHoldout(key, 10)).toBe(isInHoldout(key, 10));
    }
  });

  it('holds out 10% of 100,000 people within ±1%', () => {
    let held = 0;
    for (let i = 0; i < 100_000; i++) if (isInHoldout(`anon:${i.toString(36)}-visitor`, 10)) held++;
    expect(held / 100_000).toBeGreaterThan(0.09);
    expect(held / 100_000).toBeLessThan(0.11);
  });

  it('draws independent groups per experiment', () => {
    let both = 0;
    let first = 0;
    for (let i = 0; i < 100_000; i++) {
      const key = `user:${i}`;
      const a = isInHoldout(key, 10, 'exp-a');
      if (a) first++;
      if (a && isInHoldout(key, 10, 'exp-b')) both++;
    }
    // Independent draws overlap by ~10% of the first group, not all of it.
    expect(both / first).toBeGreaterThan(0.08);
    expect(both / first).toBeLessThan(0.12);
  });

  it('holds out nobody at 0% and everybody at 100%', () => {
    expect(isInHoldout('anon:x', 0)).toBe(false);
    expect(isInHoldout('anon:x', 100)).toBe(true);
  });
});
