/**
 * The consent model: categories and their defaults, the policy version, Global Privacy
 * Control, and which purpose each sink serves. The SDK and the Worker both decide with
 * these functions, so the browser and the edge can never disagree about a rule.
 */
import { z } from 'zod';
import {
  CONSENT_KEY_PATTERN,
  type ConsentCategoryConfig,
  type ConsentState,
  DEFAULT_CONSENT_CATEGORIES,
  DEFAULT_POLICY_VERSION,
  type Purpose,
  SINK_PURPOSE,
  type Sink,
} from './constants.ts';

export const ConsentCategoryConfigSchema = z.object({
  key: z.string().regex(CONSENT_KEY_PATTERN, 'expected a lower-case key like "analytics"'),
  label: z.string().min(1).max(128),
  description: z.string().max(2000),
  required: z.boolean(),
  enabled: z.boolean(),
  default: z.boolean(),
});

/** What `GET /v1/config` serves: the categories a site offers and its policy version. */
export const ConsentConfigSchema = z.object({
  policyVersion: z.string().min(1).max(64),
  categories: z.array(ConsentCategoryConfigSchema).max(32),
});
export type ConsentConfig = z.infer<typeof ConsentConfigSchema>;

/** The built-in categories as a site offers them until a marketer changes them. */
export const DEFAULT_CONSENT_CONFIG: ConsentConfig = {
  policyVersion: DEFAULT_POLICY_VERSION,
  categories: [
    {
      key: 'necessary',
      label: 'Strictly necessary',
      description: 'Needed for the site to work. Always on.',
      required: true,
      enabled: true,
      default: true,
    },
    {
      key: 'analytics',
      label: 'Analytics',
      description: 'Counts visits and events so we can improve the shop.',
      required: false,
      enabled: true,
      default: false,
    },
    {
      key: 'personalization',
      label: 'Personalization',
      description: 'Remembers what you browse to recommend products for you.',
      required: false,
      enabled: true,
      default: false,
    },
    {
      key: 'marketing',
      label: 'Marketing',
      description: 'Personal offers and promotions.',
      required: false,
      enabled: true,
      default: false,
    },
  ],
};

/** Consent before any choice: necessary only. */
export function defaultConsent(policyVersion: string = DEFAULT_POLICY_VERSION): ConsentState {
  return { categories: { ...DEFAULT_CONSENT_CATEGORIES }, policyVersion };
}

/** Global Privacy Control (`Sec-GPC: 1`, `navigator.globalPrivacyControl`) turns marketing off. */
export function applyGpc(state: ConsentState, gpc: boolean): ConsentState {
  if (!gpc || state.categories.marketing !== true) return state;
  return { ...state, categories: { ...state.categories, marketing: false } };
}

/**
 * Normalizes a person's choice against a site's configuration: required categories are
 * on, disabled or unknown categories are off, so a stale or forged state cannot grant
 * more than the site offers.
 */
export function normalizeConsent(state: ConsentState, config: ConsentConfig): ConsentState {
  const categories: Record<string, boolean> = {};
  for (const c of config.categories) {
    categories[c.key] = c.required ? true : c.enabled && state.categories[c.key] === true;
  }
  return { categories, policyVersion: state.policyVersion };
}

/** At most this many categories of a choice are kept as its claim (a site offers at most 32). */
export const MAX_CLAIMED_CATEGORIES = 64;

/**
 * A choice's categories as the person's tag stated them, for its proof: the yes/no answers
 * under keys a category can have, at most MAX_CLAIMED_CATEGORIES. Unlike normalizeConsent,
 * nothing is taken from the site's categories now: a choice made under an older policy
 * keeps the categories that policy offered (one removed since, one disabled since), and
 * one GPC overrode keeps the answer the person gave.
 */
export function claimedCategories(categories: Readonly<Record<string, unknown>>): Record<string, boolean> {
  const claim: Record<string, boolean> = {};
  let kept = 0;
  for (const [key, value] of Object.entries(categories)) {
    if (typeof value !== 'boolean' || !CONSENT_KEY_PATTERN.test(key)) continue;
    claim[key] = value;
    if (++kept === MAX_CLAIMED_CATEGORIES) break;
  }
  return claim;
}

/** Whether a purpose is granted in a consent state. */
export function isGranted(state: ConsentState | undefined, purpose: Purpose): boolean {
  return state?.categories[purpose] === true;
}

/** The sinks an event may reach under a consent state. */
export function grantedSinks(state: ConsentState | undefined): Sink[] {
  return (Object.keys(SINK_PURPOSE) as Sink[]).filter((sink) => isGranted(state, SINK_PURPOSE[sink]));
}

/** Whether a stored choice was made under an older policy and the person must be asked again. */
export function needsReconsent(state: ConsentState | undefined, currentPolicyVersion: string): boolean {
  return state === undefined || state.policyVersion !== currentPolicyVersion;
}

/**
 * A recorded choice as it stands under the site's configuration now: none when it was made
 * under another policy version (the person is asked again, and nothing is granted until they
 * answer), else what the site still offers of it (a category since disabled grants nothing).
 */
export function consentInForce(state: ConsentState, config: ConsentConfig): ConsentState | undefined {
  return needsReconsent(state, config.policyVersion) ? undefined : normalizeConsent(state, config);
}

export type { ConsentCategoryConfig, ConsentState };
