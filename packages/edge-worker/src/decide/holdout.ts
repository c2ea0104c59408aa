/**
 * The holdout group: a deterministic share of people (HOLDOUT_PERCENT, default 10%) who
 * get the defaults on purpose, so personalization's lift is measured against them.
 * Membership is a hash of the experiment and the person's key (see holdoutKey) — stable
 * across requests, isolates, deploys and sign-in, with no state to store, and independent
 * between experiments.
 */

import { hash32 } from '../hash/index.ts';
import { numberSetting } from '../observability/index.ts';

/** The experiment name recorded with every decision; change it to reshuffle the groups. */
export const DEFAULT_EXPERIMENT = 'personalization-v1';

/** Parses HOLDOUT_PERCENT: a number 0..100; unset, 10; anything else 10 too, logged once. */
export function holdoutPercent(raw: string | undefined): number {
  // Said once per isolate: a lift report measured against a holdout other than the one set
  // ("5%" read as the default 10) compares the wrong groups without anyone knowing.
  return numberSetting('HOLDOUT_PERCENT', raw, {
    min: 0,
    max: 100,
    fallback: 10,
    expected: 'a number 0 to 100',
    applied: (percent) => `${percent} applies`,
  });
}

/**
 * The key a person's group is drawn by: their first browser's, once they have one. An
 * anonymous visitor's key is their browser's anyway, so signing in (the profile becomes
 * `user:…`, the browser its first) moves nobody between groups: otherwise about one person
 * in ten would switch at sign-in, and lift would count them on both sides. The first browser
 * never changes (a person's browser list never drops one).
 */
export function holdoutKey(personKey: string, firstBrowser: string | undefined): string {
  return firstBrowser !== undefined ? `anon:${firstBrowser}` : personKey;
}

/**
 * Whether a person is held out under the deployment's HOLDOUT_PERCENT, drawn by their first
 * browser: the one rule decide and the triggers share, so that both surfaces keep the same
 * people on the control experience.
 */
export function isPersonHeldOut(env: Env, personKey: string, firstBrowser: string | undefined): boolean {
  return isInHoldout(holdoutKey(personKey, firstBrowser), holdoutPercent(env.HOLDOUT_PERCENT));
}

/** Whether a person is in the holdout group of an experiment (buckets of 0.01%). */
export function isInHoldout(personKey: string, percent: number, experiment = DEFAULT_EXPERIMENT): boolean {
  const bucket = hash32(`${experiment}\u0000${personKey}`) % 10000;
  return bucket < Math.round(percent * 100);
}
