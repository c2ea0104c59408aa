/**
 * The consent gate: which events may leave the page and when storage may be used.
 *
 * Rule (the same one the Worker enforces again): every sink serves a purpose —
 * analytics → event log, personalization → profile and decisions, marketing →
 * promotions — so an event is sent only when at least one of those purposes is granted,
 * and the same condition allows writing to localStorage / IndexedDB. `consent.updated`
 * events are the exception: they are the proof of the person's choice (strictly
 * necessary), so they are sent whenever a choice is made, a refusal included.
 * Before any choice, events wait in memory; a refusal of every purpose discards them.
 */
import {
  CONSENT_CATEGORIES,
  type ConsentCategoryConfig,
  type ConsentState,
  DEFAULT_POLICY_VERSION,
  PURPOSES,
} from '@attune/shared-schema/constants';

/** The categories a site offers and its policy version (what `GET /v1/config` serves). */
export interface ConsentConfig {
  policyVersion: string;
  categories: ConsentCategoryConfig[];
}

/** What happens to an event under a consent state. */
export type GateDecision = 'send' | 'wait' | 'drop';

/** The built-in categories, used until the site's options or `/v1/config` name others. */
export const builtInConsentConfig = (): ConsentConfig => ({
  policyVersion: DEFAULT_POLICY_VERSION,
  categories: CONSENT_CATEGORIES.map((key, index) => ({
    key,
    label: key,
    description: '',
    required: !index,
    enabled: true,
    default: !index,
  })),
});

/** Whether a purpose that needs events is granted: the send rule and the storage rule. */
export function allowsCollection(state: ConsentState | undefined): boolean {
  return PURPOSES.some((purpose) => state?.categories[purpose] === true);
}

/**
 * This tab's choice once another tab's is taken. `aside` is the policy version of a choice
 * this tab set aside when a new version asked again: a tab still open from before (which
 * knows no newer version) writes that choice back with every event, and taking it would
 * undo the asking. So from a choice of that version only what it withdraws is taken: a
 * purpose stays granted only if both grant it (this tab's version stands), and a tab still
 * asking takes only a refusal. Any other choice is taken as it is.
 */
export function followChoice(
  theirs: ConsentState,
  mine: ConsentState | undefined,
  aside: string | undefined,
): ConsentState | undefined {
  if (theirs.policyVersion !== aside) return theirs;
  if (!mine) return allowsCollection(theirs) ? undefined : theirs;
  const categories = { ...mine.categories };
  for (const key in categories) if (theirs.categories[key] === false) categories[key] = false;
  return { ...mine, categories };
}

/** Where an event of `type` goes under the person's choice (undefined: no choice yet). */
export function gate(type: string, choice: ConsentState | undefined): GateDecision {
  if (type === 'consent' || allowsCollection(choice)) return 'send';
  return choice ? 'drop' : 'wait';
}

/**
 * Applies a (partial) choice to the current categories against the site's config:
 * required categories are on, disabled and unknown ones off, and Global Privacy Control
 * turns marketing off — so no call can grant more than the site offers.
 */
export function applyChoice(
  current: Record<string, boolean>,
  partial: Record<string, boolean>,
  config: ConsentConfig,
  gpc: boolean | undefined,
): Record<string, boolean> {
  const categories: Record<string, boolean> = {};
  for (const c of config.categories) {
    categories[c.key] =
      c.required === true ||
      (c.enabled === true && (partial[c.key] ?? current[c.key]) === true && !(gpc && c.key === 'marketing'));
  }
  return categories;
}

/**
 * Reads `/v1/config` (untrusted network input) into a config, or undefined when it is
 * malformed (a `categories` object with its own `every` throws instead: the caller keeps
 * the config it has either way). Flags are only ever compared with `=== true`, so a
 * missing or odd flag can never grant anything.
 */
export const parseConsentConfig = (json: unknown): ConsentConfig | undefined =>
  // Only an array has `every` among JSON values (an object's own "every" is no function and throws).
  typeof (json as Partial<ConsentConfig> | null)?.policyVersion === 'string' &&
  (json as Partial<ConsentConfig>).categories?.every?.((c) => typeof c?.key === 'string')
    ? (json as ConsentConfig)
    : undefined;
