/**
 * Google Consent Mode v2 adapter: mirrors Attune's categories into `gtag('consent', …)`
 * so Google tags on the page obey the same choice. It talks only to a gtag or dataLayer
 * the site already has; it never creates Google's globals itself.
 */
import type { ConsentState } from '@attune/shared-schema/constants';

/** Consent Mode v2 signals for Attune categories. */
export function googleConsentSignals(categories: Record<string, boolean>): Record<string, string> {
  const signal = (granted?: boolean) => (granted ? 'granted' : 'denied');
  const ads = signal(categories.marketing);
  return {
    ad_storage: ads,
    ad_user_data: ads,
    ad_personalization: ads,
    analytics_storage: signal(categories.analytics),
    personalization_storage: signal(categories.personalization),
  };
}

/**
 * How long Google's tags wait for an update after a default that asks them to (`wait_for_update`,
 * ms): a returning visitor's choice is confirmed by one /v1/config request.
 */
export const WAIT_FOR_UPDATE_MS = 500;

/**
 * Sends `gtag('consent', 'default' | 'update', signals)` when Google's tag is on the page;
 * `wait` asks Google's tags to hold their requests for the update that follows.
 */
export function emitGoogleConsent(
  kind: 'default' | 'update',
  state: Pick<ConsentState, 'categories'>,
  wait?: boolean,
): void {
  const signals: Record<string, string | number> = googleConsentSignals(state.categories);
  if (wait) signals.wait_for_update = WAIT_FOR_UPDATE_MS;
  // (Member expressions, not destructuring: the tag gzips smaller.)
  const page = globalThis as { gtag?: (...args: unknown[]) => void; dataLayer?: unknown[] };
  const dataLayer = page.dataLayer;
  // gtag.js reads Arguments objects from dataLayer, not arrays: push `arguments` as Google's snippet does.
  (
    page.gtag ??
    (dataLayer &&
      function () {
        // biome-ignore lint/complexity/noArguments: gtag.js only understands Arguments objects.
        dataLayer.push(arguments);
      })
  )?.('consent', kind, signals);
}
