/**
 * The shop's consent UI state in the browser: which of the categories a site offers a visitor
 * chooses (the tag's `consent.config()`, its one read of the Worker's `/v1/config` per page, so
 * a marketer's change in Directus shows without a redeploy) and whether the visitor has already
 * chosen under the current policy. That
 * "has chosen" marker is a strictly necessary cookie holding only the policy version; the
 * "ask again" flag that "delete my data" leaves is a localStorage key holding no identifier.
 */
import type { ConsentCategoryConfig, ConsentConfig } from '@attune/shared-schema/constants';

export const CHOICE_COOKIE = 'shop_consent_choice';

/**
 * localStorage key set after "delete my data" (value `1`, no identifier): the next visitor is
 * asked before anything of theirs is sent, although the SDK holds a decision (the erasure's
 * withdrawal). A key of its own, not the choice cookie's absence: a cookie written by
 * `document.cookie` lives 7 days in Safari, and a visitor who chose was asked again every week.
 */
export const ASK_AGAIN_KEY = 'shop-consent-ask-again';

/** Categories a visitor can choose: enabled by the marketer and not required. */
export function choosable(config: ConsentConfig): ConsentCategoryConfig[] {
  return config.categories.filter((c) => c.enabled && !c.required);
}

/** What the banner weighs on each page. */
export interface ConsentAsk {
  /** The SDK holds a choice made under the policy version in force. */
  decided: boolean;
  /** The policy version in the shop's choice cookie, if it is still there. */
  chosen: string | undefined;
  /** The ask-again flag "delete my data" left. */
  askAgain: boolean;
  /** The site's policy version now. */
  policyVersion: string;
}

/**
 * Whether the banner opens: after "delete my data" (its flag), or when the SDK holds no choice
 * under the current policy and the choice cookie does not remember a refusal under it. The
 * cookie's absence alone is not a reason (Safari expires it after 7 days; the SDK still decides).
 */
export function shouldAskForConsent({ decided, chosen, askAgain, policyVersion }: ConsentAsk): boolean {
  return askAgain || (!decided && chosen !== policyVersion);
}

/** Flags that the next page asks for consent again (after "delete my data"); never throws. */
export function askConsentAgain(): void {
  try {
    localStorage.setItem(ASK_AGAIN_KEY, '1');
  } catch {
    // Storage blocked: the SDK cannot keep the withdrawal either, so it is undecided on the next page and asks.
  }
}

/** Whether "delete my data" asked for consent to be asked again. */
export function askingConsentAgain(): boolean {
  try {
    return localStorage.getItem(ASK_AGAIN_KEY) !== null;
  } catch {
    return false;
  }
}

export function chosenPolicyVersion(): string | undefined {
  const match = document.cookie.match(new RegExp(`(?:^|; )${CHOICE_COOKIE}=([^;]*)`));
  return match?.[1] ? decodeURIComponent(match[1]) : undefined;
}

/** Records that the visitor chose (banner or preferences): asked again only when the policy changes. */
export function rememberChoice(policyVersion: string): void {
  try {
    localStorage.removeItem(ASK_AGAIN_KEY);
  } catch {
    // Storage blocked: no flag was written.
  }
  // biome-ignore lint/suspicious/noDocumentCookie: one strictly necessary cookie; the Cookie Store API is not everywhere yet
  document.cookie = `${CHOICE_COOKIE}=${encodeURIComponent(policyVersion)}; Path=/; Max-Age=${60 * 60 * 24 * 180}; SameSite=Lax`;
}

export function forgetChoice(): void {
  // biome-ignore lint/suspicious/noDocumentCookie: see rememberChoice
  document.cookie = `${CHOICE_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
}
