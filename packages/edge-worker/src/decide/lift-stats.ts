/**
 * How sure a lift report is: 95 % confidence intervals for what it compares, so that a
 * marketer can tell "+66 %" from a handful of conversions (noise) from a difference the
 * data supports, as every A/B tool shows. Pure arithmetic on the report's counts — people
 * and converters per group, each person one independent trial — with two standard methods:
 *
 * - the difference of the conversion rates (treatment − holdout): Newcombe's hybrid score
 *   interval (Newcombe 1998, "Interval estimation for the difference between independent
 *   proportions: comparison of eleven methods", Stat Med 17:873–890, method 10), built from
 *   each group's Wilson score interval. It stays inside −1..1 and is defined with no
 *   converters at all, where the plain Wald interval collapses to a point;
 * - the relative lift (treatment rate / holdout rate − 1): the log interval of the rate
 *   ratio (Katz, Baptista, Azen and Pike 1978, Biometrics 34:469–474), as scipy's
 *   `relative_risk(...).confidence_interval()` computes it. It needs converters in both
 *   groups (a ratio with 0 has no logarithm).
 *
 * A difference is called significant when its interval leaves out 0.
 */

/** The 97.5th percentile of the standard normal distribution: two-sided 95 %. */
export const Z_95 = 1.959963984540054;

export interface Interval {
  low: number;
  high: number;
}

/** The counts of one group: people exposed, and how many of them converted. */
export interface GroupCounts {
  people: number;
  converters: number;
}

/** Wilson's score interval for the proportion `converters / people` (undefined for nobody). */
export function wilsonInterval({ people, converters }: GroupCounts, z = Z_95): Interval | undefined {
  if (people <= 0) return undefined;
  const p = converters / people;
  const z2 = z * z;
  const centre = (p + z2 / (2 * people)) / (1 + z2 / people);
  const half = (z / (1 + z2 / people)) * Math.sqrt((p * (1 - p)) / people + z2 / (4 * people * people));
  // Clamped: rounding must not put an end a hair outside 0..1 (an all-or-nothing group sits on it).
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Newcombe's hybrid score interval for treatment rate − holdout rate; undefined when a
 * group has nobody (no rate to compare).
 */
export function differenceInterval(
  treatment: GroupCounts,
  holdout: GroupCounts,
  z = Z_95,
): Interval | undefined {
  const t = wilsonInterval(treatment, z);
  const h = wilsonInterval(holdout, z);
  if (t === undefined || h === undefined) return undefined;
  const pt = treatment.converters / treatment.people;
  const ph = holdout.converters / holdout.people;
  const d = pt - ph;
  return {
    low: d - Math.sqrt((pt - t.low) ** 2 + (h.high - ph) ** 2),
    high: d + Math.sqrt((t.high - pt) ** 2 + (ph - h.low) ** 2),
  };
}

/**
 * The log (Katz) interval of the rate ratio, less 1: the relative lift's interval;
 * undefined when a group has nobody or no converter.
 */
export function liftInterval(treatment: GroupCounts, holdout: GroupCounts, z = Z_95): Interval | undefined {
  if (treatment.converters <= 0 || holdout.converters <= 0) return undefined;
  if (treatment.people <= 0 || holdout.people <= 0) return undefined;
  const ratio = treatment.converters / treatment.people / (holdout.converters / holdout.people);
  const se = Math.sqrt(
    1 / treatment.converters - 1 / treatment.people + 1 / holdout.converters - 1 / holdout.people,
  );
  return { low: ratio * Math.exp(-z * se) - 1, high: ratio * Math.exp(z * se) - 1 };
}

/** Whether an interval of a difference leaves out 0 (no interval: nothing shown). */
export function excludesZero(interval: Interval | undefined): boolean {
  return interval !== undefined && (interval.low > 0 || interval.high < 0);
}
