/**
 * Sign-out in the browser, in the order that keeps this browser from going on as the
 * person who leaves: the SDK's queued events go first (they carry the id merged into the
 * person, and the Worker's collect answer writes `attune_aid` from them), then the SDK
 * forgets the person (`reset()`), then the shop ends its session and expires `attune_aid`,
 * then the cart is emptied (it is kept in localStorage: the next person at a shared
 * computer saw, and could check out, the items of the one who left). Sending the events cannot keep the person from signing out (it gets a time budget and
 * may fail), and `reset()` happens whether they went or not.
 */
import type { Attune } from '@attune/browser-sdk';
import { writeCart } from './cart.ts';
import { forgetIdentity as forgetShopIdentity } from './identity-marker.ts';

/** How long sign-out (and erasure) wait for the queued events before going on without them. */
export const SIGN_OUT_FLUSH_BUDGET_MS = 2000;

/**
 * How long sign-out waits for the shop's answer before counting it as not reached: the sign-out
 * a page load runs for a session that ended (lib/shop-identity.ts) holds the page's SDK until
 * then, and a request that hung left the page without one (no banner, "Delete my data" disabled).
 */
export const SIGN_OUT_REQUEST_BUDGET_MS = 3000;

export interface SignOutOptions {
  /** Ends the shop's session (and expires `attune_aid`): POST /api/signout, abandoned on `signal`. */
  endSession?: (signal: AbortSignal) => Promise<Response>;
  /** Empties this browser's cart (lib/cart.ts). */
  emptyCart?: () => void;
  /** Clears the shop's note of whom the SDK was identified as, and stops following them (lib/identity-marker.ts). */
  forgetIdentity?: () => void;
  flushBudgetMs?: number;
  /** How long to wait for the shop's answer (SIGN_OUT_REQUEST_BUDGET_MS). */
  requestBudgetMs?: number;
}

/** Empties the stored cart; never throws (storage blocked: there is no cart to leave behind). */
export function emptyStoredCart(): void {
  try {
    writeCart([]);
  } catch {
    // localStorage unavailable: nothing was stored either.
  }
}

/**
 * Sends the SDK's queued events, waiting at most `budgetMs`; never rejects. Events that did
 * not go stay queued for the SDK's own retry. Erasure ("delete my data") sends them first
 * too, so they are erased with the person (a later one meets the edge's tombstone).
 */
export async function sendQueuedEvents(
  attune: Pick<Attune, 'flush'> | undefined,
  budgetMs = SIGN_OUT_FLUSH_BUDGET_MS,
): Promise<void> {
  if (attune === undefined) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, budgetMs);
  });
  try {
    await Promise.race([attune.flush(), timeUp]);
  } catch {
    // The send failed (offline, or the SDK threw): the person can still leave.
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Signs out; true when the shop ended the session. False when the shop could not be
 * reached or refused: the person is still signed in there and can try again (the SDK has
 * already forgotten them, so nothing more is tracked as them meanwhile).
 */
export async function signOut(
  attune: Pick<Attune, 'flush' | 'reset'> | undefined,
  options: SignOutOptions = {},
): Promise<boolean> {
  const {
    endSession = (signal) => fetch('/api/signout', { method: 'POST', signal }),
    emptyCart = emptyStoredCart,
    forgetIdentity = () => forgetShopIdentity(),
    flushBudgetMs = SIGN_OUT_FLUSH_BUDGET_MS,
    requestBudgetMs = SIGN_OUT_REQUEST_BUDGET_MS,
  } = options;
  await sendQueuedEvents(attune, flushBudgetMs);
  if (attune !== undefined) {
    try {
      attune.reset();
    } catch {
      // The SDK could not write its record (storage blocked): the shop's sign-out still goes on.
    }
  }
  let ended: boolean;
  const abandon = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon.abort();
      reject(new Error('the shop did not answer the sign-out in time'));
    }, requestBudgetMs);
  });
  try {
    // Raced as well as aborted: an answer whose body never ends must not hold the page either.
    ended = (await Promise.race([endSession(abandon.signal), timeUp])).ok;
  } catch {
    // Not reached, refused or too slow: the person is still signed in there and can try again.
    return false;
  } finally {
    clearTimeout(timer);
  }
  // Only once signed out: a person whose sign-out failed, still signed in, keeps their cart, and
  // the note that the SDK was theirs keeps the next page trying again (lib/shop-identity.ts).
  if (ended) {
    emptyCart();
    forgetIdentity();
  }
  return ended;
}
