/**
 * The lift report's 95 % intervals against published values: Newcombe's (1998, Table II,
 * method 10) for the difference of two proportions, to the 4 decimals printed there, and
 * scipy 1.17's `scipy.stats.contingency.relative_risk(...).confidence_interval()` (Katz log
 * interval; its documented example 10/75 vs 12/225 → 1.1262..5.5499) for the rate ratio.
 * The 10-decimal values were computed with scipy (binomtest's Wilson intervals combined as
 * Newcombe describes), as a check of the digits past the paper's.
 */
import { describe, expect, it } from 'vitest';
import { differenceInterval, excludesZero, liftInterval, wilsonInterval, Z_95 } from './lift-stats.ts';

const counts = (converters: number, people: number) => ({ converters, people });

describe('Newcombe’s hybrid score interval for treatment rate − holdout rate', () => {
  // [treatment converters, people, holdout converters, people, low, high] as Table II prints them.
  const newcombe1998: [number, number, number, number, number, number][] = [
    [56, 70, 48, 80, 0.0524, 0.3339],
    [9, 10, 3, 10, 0.1705, 0.809],
    [6, 7, 2, 7, 0.0582, 0.8062],
    [5, 56, 0, 29, -0.0381, 0.1926],
    [0, 10, 0, 20, -0.1611, 0.2775],
    [0, 10, 0, 10, -0.2775, 0.2775],
    [10, 10, 0, 20, 0.6791, 1],
    [10, 10, 0, 10, 0.6075, 1],
  ];
  it.each(newcombe1998)('%i/%i − %i/%i: %f to %f, as Newcombe (1998) prints it', (a, m, b, n, low, high) => {
    const interval = differenceInterval(counts(a, m), counts(b, n));
    expect(interval?.low).toBeCloseTo(low, 4);
    expect(interval?.high).toBeCloseTo(high, 4);
  });

  it('matches scipy’s Wilson intervals combined, to 9 decimals', () => {
    expect(differenceInterval(counts(56, 70), counts(48, 80))).toEqual({
      low: expect.closeTo(0.0524314724, 9),
      high: expect.closeTo(0.333872654, 9),
    });
    // "+66 %" from 5 of 30 against 3 of 30: anything from −11.5 to +24.8 points.
    expect(differenceInterval(counts(5, 30), counts(3, 30))).toEqual({
      low: expect.closeTo(-0.1152864702, 9),
      high: expect.closeTo(0.2478581302, 9),
    });
    // 2.5 % against 2 % of 10,000 people each: a quarter more, and the data say so.
    expect(differenceInterval(counts(250, 10_000), counts(200, 10_000))).toEqual({
      low: expect.closeTo(0.0008870476, 9),
      high: expect.closeTo(0.0091382667, 9),
    });
  });

  it('is undefined when a group has nobody', () => {
    expect(differenceInterval(counts(0, 0), counts(3, 10))).toBeUndefined();
    expect(differenceInterval(counts(3, 10), counts(0, 0))).toBeUndefined();
  });
});

describe('the log (Katz) interval of the relative lift', () => {
  it('is scipy’s relative_risk interval, less 1', () => {
    // scipy's documented example: relative risk 2.5, 1.1261564003469628 to 5.549850800541033.
    expect(liftInterval(counts(10, 75), counts(12, 225))).toEqual({
      low: expect.closeTo(1.1261564003469628 - 1, 12),
      high: expect.closeTo(5.549850800541033 - 1, 12),
    });
    expect(liftInterval(counts(5, 30), counts(3, 30))).toEqual({
      low: expect.closeTo(0.436885263588962 - 1, 12),
      high: expect.closeTo(6.358140247072317 - 1, 12),
    });
    expect(liftInterval(counts(250, 10_000), counts(200, 10_000))).toEqual({
      low: expect.closeTo(1.040064397676184 - 1, 12),
      high: expect.closeTo(1.5023108218020862 - 1, 12),
    });
  });

  it('matches Fagerland et al. (2015, Table 5): 7/34 against 1/34, 0.91 to 54 (ratio)', () => {
    const interval = liftInterval(counts(7, 34), counts(1, 34));
    expect((interval?.low ?? Number.NaN) + 1).toBeCloseTo(0.91, 2);
    expect(Math.round((interval?.high ?? Number.NaN) + 1)).toBe(54);
  });

  it('is undefined without converters in both groups (a ratio with 0 has no logarithm)', () => {
    expect(liftInterval(counts(0, 30), counts(3, 30))).toBeUndefined();
    expect(liftInterval(counts(3, 30), counts(0, 30))).toBeUndefined();
    expect(liftInterval(counts(0, 0), counts(3, 30))).toBeUndefined();
  });
});

describe('Wilson’s score interval and significance', () => {
  it('is the score interval scipy’s binomtest(...).proportion_ci(method="wilson") gives', () => {
    // 0 of 10: 0 to 0.2775327999 (scipy's own test values).
    expect(wilsonInterval(counts(0, 10))).toEqual({
      low: expect.closeTo(0, 12),
      high: expect.closeTo(0.2775327999, 9),
    });
    expect(wilsonInterval(counts(10, 10))).toEqual({
      low: expect.closeTo(0.7224672001, 9),
      high: expect.closeTo(1, 12),
    });
    expect(wilsonInterval(counts(0, 0))).toBeUndefined();
    expect(Z_95).toBeCloseTo(1.959963984540054, 15);
  });

  it('calls a difference significant only when its interval leaves out 0', () => {
    expect(excludesZero(differenceInterval(counts(250, 10_000), counts(200, 10_000)))).toBe(true);
    expect(excludesZero(differenceInterval(counts(200, 10_000), counts(250, 10_000)))).toBe(true);
    expect(excludesZero(differenceInterval(counts(5, 30), counts(3, 30)))).toBe(false);
    expect(excludesZero(undefined)).toBe(false);
  });
});
