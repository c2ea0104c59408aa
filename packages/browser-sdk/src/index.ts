/**
 * @attune/browser-sdk — Attune's tiny, consent-gated browser tracker for bundlers:
 * `import { createAttune } from '@attune/browser-sdk'`. The script-tag build
 * (dist/attune.js) wraps the same tracker; see src/script.ts.
 */
// The shared-schema types the API's signatures name, so that a page can name them too: the
// published package bundles them into its declarations (@attune/shared-schema is not on npm).
export type {
  ConsentCategoryConfig,
  ConsentState,
  DecideResponse,
  JsonValue,
  ProductCard,
  SlotDecision,
} from '@attune/shared-schema/constants';
export {
  type Attune,
  type AttuneError,
  type AttuneOptions,
  type ConsentApi,
  type ConsentSnapshot,
  createAttune,
  type IdentifyOptions,
  type Properties,
  VERSION,
} from './attune.ts';
export type { ConsentConfig } from './consent/consent.ts';
export { googleConsentSignals } from './consent/google-consent-mode.ts';
export { tcfCategories } from './consent/tcf.ts';
export type { Persistence, VisitorRecord } from './store/store.ts';
