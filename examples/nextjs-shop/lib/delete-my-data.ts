/**
 * "Delete my data" in the browser: the SDK's queued events go first (bounded, so they are
 * erased with the visitor), then the shop's server is asked to erase this browser's
 * anonymous id (`attune.anonymousId()`, the id its events carry) and the signed-in person.
 * The shop answers `{"erased": [...]}` with only those the edge held: an empty list (a
 * fresh id, e.g. after "reject all", when the SDK keeps none) is "nothing to erase", not
 * "done"; a 403 means this browser's id belongs to an account the visitor is not signed in
 * to. Only an erasure that had someone to erase and succeeded withdraws consent in the SDK,
 * resets it and empties the cart (the visitor is signed out and starts over, asked again for
 * consent before anything is sent): the anonymous
 * id is the only handle on what was sent under it, and a reset before the erasure is
 * confirmed would throw it away.
 */
import type { Attune } from '@attune/browser-sdk';
import { PURPOSES, ULID_PATTERN } from '@attune/shared-schema/constants';
import { askConsentAgain } from './consent-client.ts';
import { forgetIdentity as forgetShopIdentity } from './identity-marker.ts';
import { emptyStoredCart, SIGN_OUT_FLUSH_BUDGET_MS, sendQueuedEvents } from './sign-out.ts';

export type ErasureResult =
  /** The shop erased these (`user`, `anon`); consent was withdrawn in the SDK, which was reset. */
  | { kind: 'erased'; erased: string[]; references: string[] }
  /** The shop found no one to erase; the SDK was left as it was. */
  | { kind: 'nothing' }
  /** Nothing is known to be erased; the SDK was left as it was, and the visitor can try again. */
  | { kind: 'failed'; message: string };

/** What "delete my data" uses of the SDK. */
export type ErasableSdk = Pick<Attune, 'flush' | 'reset' | 'anonymousId'> & {
  consent: Pick<Attune['consent'], 'get' | 'set'>;
};

export interface DeleteMyDataOptions {
  /** POST /api/erase with the anonymous id. */
  requestErasure?: (anonymousId: string) => Promise<Response>;
  /** Empties this browser's cart (lib/cart.ts): the next visitor starts with none. */
  emptyCart?: () => void;
  /** Clears the shop's note of whom the SDK was identified as, and stops following them (lib/identity-marker.ts). */
  forgetIdentity?: () => void;
  /** Flags that the banner opens on the next page (lib/consent-client.ts). */
  askConsentAgain?: () => void;
  flushBudgetMs?: number;
}

/** Every purpose off: a choice the SDK sends nothing under but its proof. */
export function withdrawal(categories: Record<string, boolean>): Record<string, boolean> {
  const off: Record<string, boolean> = Object.fromEntries(PURPOSES.map((purpose) => [purpose, false]));
  // Categories a marketer added in Directus too; required ones stay on whatever is asked.
  for (const key of Object.keys(categories)) off[key] = false;
  return off;
}

function postErasure(anonymousId: string): Promise<Response> {
  return fetch('/api/erase', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ anonymousId }),
  });
}

/** Erases this visitor; never rejects. */
export async function deleteMyData(
  attune: ErasableSdk | undefined,
  options: DeleteMyDataOptions = {},
): Promise<ErasureResult> {
  const {
    requestErasure = postErasure,
    emptyCart = emptyStoredCart,
    forgetIdentity = () => forgetShopIdentity(),
    askConsentAgain: askAgain = askConsentAgain,
    flushBudgetMs = SIGN_OUT_FLUSH_BUDGET_MS,
  } = options;
  if (attune === undefined)
    return { kind: 'failed', message: 'The page has not finished loading; try again in a moment.' };
  // Bounded, and never failing: a send that fails or hangs must not keep anyone from erasure.
  await sendQueuedEvents(attune, flushBudgetMs);
  let anonymousId: string;
  try {
    anonymousId = attune.anonymousId();
  } catch {
    return { kind: 'failed', message: 'This browser’s id could not be read; reload the page and try again.' };
  }
  let res: Response;
  let body: { erased?: unknown; references?: unknown; error?: unknown };
  try {
    res = await requestErasure(anonymousId);
    body = (await res.json()) as typeof body;
  } catch {
    return { kind: 'failed', message: 'Could not reach the shop; please try again.' };
  }
  if (res.status === 403 && typeof body.error === 'string') {
    // Not worth retrying: signing in is what lets this browser's data be erased.
    return { kind: 'failed', message: `${body.error.charAt(0).toUpperCase()}${body.error.slice(1)}.` };
  }
  if (!res.ok) {
    const reason = typeof body.error === 'string' ? ` (${body.error})` : '';
    return { kind: 'failed', message: `Could not delete your data right now${reason}; please try again.` };
  }
  const erased = Array.isArray(body.erased) ? body.erased.filter((k) => typeof k === 'string') : [];
  if (erased.length === 0) return { kind: 'nothing' };
  try {
    // The erased visitor's grant must not carry over to whoever is next: withdrawn first, so the
    // SDK stops sending at once (this tab and the shop's others) and the refusal's proof goes
    // under the erased ids (which the Worker's tombstone drops), not as a choice of the next
    // visitor. The next page asks again (the flag below: the SDK now holds a decision, the withdrawal).
    attune.consent.set(withdrawal(attune.consent.get().categories), 'erasure');
  } catch {
    // Storage blocked: what the SDK holds in memory goes with the page.
  }
  try {
    attune.reset();
  } catch {
    // Storage blocked: the erasure is done all the same, and the Worker drops the erased id's events.
  }
  // Signed out and started over: the erased visitor's cart must not greet the next one.
  emptyCart();
  forgetIdentity();
  askAgain();
  const references = Array.isArray(body.references)
    ? body.references.filter((r): r is string => typeof r === 'string' && ULID_PATTERN.test(r))
    : [];
  return { kind: 'erased', erased, references };
}
