/**
 * Sign-in in the browser, after the shop's server set the session and signed the user id:
 * the SDK identifies the person (the Worker merges this browser's anonymous history into
 * them) and sends that at once, waiting at most the sign-out budget, so a send that hangs
 * cannot keep a signed-in person on the sign-in page.
 */
import type { Attune } from '@attune/browser-sdk';
import { SIGN_OUT_FLUSH_BUDGET_MS, sendQueuedEvents } from './sign-out.ts';

/** What POST /api/signin answers for a known demo customer. */
export interface SignedIn {
  userId: string;
  signature: string;
  traits: Record<string, string>;
}

export interface IdentifyOptions {
  flushBudgetMs?: number;
}

/** Tells the SDK who signed in and sends it (bounded); never rejects. */
export async function identifySignedIn(
  attune: Pick<Attune, 'identify' | 'track' | 'flush'> | undefined,
  person: SignedIn,
  { flushBudgetMs = SIGN_OUT_FLUSH_BUDGET_MS }: IdentifyOptions = {},
): Promise<void> {
  if (attune === undefined) return;
  try {
    attune.identify(person.userId, person.traits, { signature: person.signature });
    attune.track('user.signed_in', { method: 'demo' });
  } catch {
    // The SDK failed: the person is signed in to the shop all the same.
  }
  await sendQueuedEvents(attune, flushBudgetMs);
}
