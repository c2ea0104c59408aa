/**
 * IAB TCF v2.2 adapter: when a CMP provides `__tcfapi`, its purpose consents become
 * Attune's categories (a choice made in the CMP is a choice made in Attune).
 *
 * Mapping (each also needs purpose 1, storing/accessing information on a device):
 * analytics ← 8 (measure content performance); personalization ← 5 + 6 (profiles for
 * and selection of personalised content); marketing ← 3 + 4 (profiles for and
 * selection of personalised advertising). Where the CMP says GDPR does not apply,
 * every purpose is granted.
 */

export interface TcData {
  gdprApplies?: boolean;
  eventStatus?: string;
  purpose?: { consents?: Record<string, boolean> };
}
type TcfApi = (command: string, version: number, callback: (data: TcData, success: boolean) => void) => void;

/** Attune categories for a TC string's purpose consents. */
export function tcfCategories(data: TcData): Record<string, boolean> {
  const all = (...purposes: number[]) =>
    data.gdprApplies === false || [1, ...purposes].every((p) => data.purpose?.consents?.[p] === true);
  return { analytics: all(8), personalization: all(5, 6), marketing: all(3, 4) };
}

/** Calls `onChoice` with the CMP's choice once loaded and after every change the person makes. */
export function listenTcf(onChoice: (categories: Record<string, boolean>, source: 'tcf') => void): void {
  (globalThis as { __tcfapi?: TcfApi }).__tcfapi?.('addEventListener', 2, (data, success) => {
    // Statuses are tcloaded, cmpuishown and useractioncomplete: only the banner showing is no choice.
    if (success && data.eventStatus !== 'cmpuishown') onChoice(tcfCategories(data), 'tcf');
  });
}
