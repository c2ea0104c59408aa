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

/** Sends `gtag('consent', 'default' | 'update', signals)` when Google's tag is on the page. */
export function emitGoogleConsent(kind: 'default' | 'update', { categories }: ConsentState): void {
  const { gtag, dataLayer } = globalThis as { gtag?: (...args: unknown[]) => void; dataLayer?: unknown[] };
  // gtag.js reads Arguments objects from dataLayer, not arrays: push `arguments` as Google's snippet does.
  (
    gtag ??
    (dataLayer &&
      function () {
        // biome-ignore lint/complexity/noArguments: gtag.js only understands Arguments objects.
        dataLayer.push(arguments);
      })
  )?.('consent', kind, googleConsentSignals(categories));
}
