/**
 * The shop's consent UI state in the browser: the categories a site offers (from the
 * Worker's `/v1/config`, first-party, so a marketer's change in Directus shows without a
 * redeploy) and whether the visitor has already chosen under the current policy. That
 * "has chosen" marker is a strictly necessary cookie holding only the policy version.
 */
import type { ConsentCategoryConfig, ConsentConfig } from '@attune/shared-schema/constants';

export const CHOICE_COOKIE = 'shop_consent_choice';

export async function fetchConsentConfig(writeKey: string): Promise<ConsentConfig | undefined> {
  try {
    const res = await fetch(`/attune/v1/config?writeKey=${encodeURIComponent(writeKey)}`, {
      cache: 'no-store',
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as Partial<ConsentConfig>;
    if (!Array.isArray(body.categories) || typeof body.policyVersion !== 'string') return undefined;
    return { policyVersion: body.policyVersion, categories: body.categories };
  } catch {
    return undefined;
  }
}

/** Categories a visitor can choose: enabled by the marketer and not required. */
export function choosable(config: ConsentConfig): ConsentCategoryConfig[] {
  return config.categories.filter((c) => c.enabled && !c.required);
}

export function chosenPolicyVersion(): string | undefined {
  const match = document.cookie.match(new RegExp(`(?:^|; )${CHOICE_COOKIE}=([^;]*)`));
  return match?.[1] ? decodeURIComponent(match[1]) : undefined;
}

export function rememberChoice(policyVersion: string): void {
  // biome-ignore lint/suspicious/noDocumentCookie: one strictly necessary cookie; the Cookie Store API is not everywhere yet
  document.cookie = `${CHOICE_COOKIE}=${encodeURIComponent(policyVersion)}; Path=/; Max-Age=${60 * 60 * 24 * 180}; SameSite=Lax`;
}

export function forgetChoice(): void {
  // biome-ignore lint/suspicious/noDocumentCookie: see rememberChoice
  document.cookie = `${CHOICE_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
}
