/**
 * Google Consent Mode v2 adapter: mirrors Attune's categories into `gtag('consent', …)`
 * so Google tags on the page obey the same choice. It only talks to a gtag or dataLayer
 * the site already has; it never creates Google's globals itself.
 */

type Gtag = (...args: unknown[]) => void;
interface GoogleWindow {
  gtag?: Gtag;
  dataLayer?: unknown[];
}

/** Consent Mode v2 signals for Attune categories. */
export function googleConsentSignals(categories: Record<string, boolean>): Record<string, 'granted' | 'denied'> {
  const signal = (on: boolean | undefined) => (on ? 'granted' : 'denied');
  const ads = signal(categories.marketing);
  return {
    ad_storage: ads,
    ad_user_data: ads,
    ad_personalization: ads,
    analytics_storage: signal(categories.analytics),
    personalization_storage: signal(categories.personalization),
    functionality_storage: 'granted',
    security_storage: 'granted',
  };
}

/** Sends `gtag('consent', 'default' | 'update', signals)` when Google's tag is on the page. */
export function emitGoogleConsent(kind: 'default' | 'update', categories: Record<string, boolean>): void {
  const w = globalThis as GoogleWindow;
  const layer = w.dataLayer;
  // gtag.js reads Arguments objects from dataLayer, not arrays: push `arguments` like the official snippet.
  const gtag =
    w.gtag ??
    (layer &&
      function (this: unknown) {
        // biome-ignore lint/complexity/noArguments: gtag.js only understands Arguments objects.
        layer.push(arguments);
      });
  gtag?.('consent', kind, googleConsentSignals(categories));
}
