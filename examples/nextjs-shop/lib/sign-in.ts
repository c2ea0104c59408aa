/**
 * Sign-in in the browser. The shop's answer is read without throwing: a network error or an
 * answer that is not JSON is "Could not reach the shop", never a click that does nothing.
 * Then, after the shop's server set the session and signed the user id:
 * the SDK identifies the person (the Worker merges this browser's anonymous history into
 * them) and sends that at once, waiting at most the sign-out budget, so a send that hangs
 * cannot keep a signed-in person on the sign-in page. A browser the shop had identified as
 * someone else is reset first (lib/shop-identity.ts keeps that note), and their cart emptied.
 */
import type { Attune } from '@attune/browser-sdk';
import { type IdentityMarker, storedIdentityMarker } from './identity-marker.ts';
import { followIdentity, forgetPrevious } from './shop-identity.ts';
import { emptyStoredCart, SIGN_OUT_FLUSH_BUDGET_MS, sendQueuedEvents } from './sign-out.ts';

/** What POST /api/signin answers for a known demo customer. */
export interface SignedIn {
  userId: string;
  signature: string;
  traits: Record<string, string>;
}

/** What the sign-in page shows when the shop's answer could not be had or read. */
export const UNREACHABLE = 'Could not reach the shop; try again';

/** POST /api/signin for `userId`: the signed person, or the message to show; never rejects. */
export async function requestSignIn(
  userId: string,
  post: typeof fetch = fetch,
): Promise<{ ok: true; person: SignedIn } | { ok: false; error: string }> {
  let res: Response;
  let body: { userId?: unknown; signature?: unknown; traits?: unknown; error?: unknown };
  try {
    res = await post('/api/signin', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    const json: unknown = await res.json();
    // JSON that is not an object (null, a number) is no answer of the shop's either.
    if (json === null || typeof json !== 'object') return { ok: false, error: UNREACHABLE };
    body = json as typeof body;
  } catch {
    return { ok: false, error: UNREACHABLE };
  }
  if (!res.ok || typeof body.userId !== 'string' || typeof body.signature !== 'string')
    return { ok: false, error: typeof body.error === 'string' ? body.error : 'Sign-in failed' };
  const traits =
    typeof body.traits === 'object' && body.traits !== null ? (body.traits as Record<string, string>) : {};
  return { ok: true, person: { userId: body.userId, signature: body.signature, traits } };
}

export interface IdentifyOptions {
  marker?: IdentityMarker;
  /** Empties this browser's cart (lib/cart.ts), as sign-out does. */
  emptyCart?: () => void;
  flushBudgetMs?: number;
}

export type SignInSdk = Pick<Attune, 'identify' | 'track' | 'flush' | 'reset'> & {
  consent: Pick<Attune['consent'], 'get' | 'onChange'>;
};

/** Tells the SDK who signed in and sends it (bounded); never rejects. */
export async function identifySignedIn(
  attune: SignInSdk | undefined,
  person: SignedIn,
  {
    marker = storedIdentityMarker,
    emptyCart = emptyStoredCart,
    flushBudgetMs = SIGN_OUT_FLUSH_BUDGET_MS,
  }: IdentifyOptions = {},
): Promise<void> {
  if (attune === undefined) return;
  try {
    const held = marker.read();
    if (held !== undefined && held !== person.userId) forgetPrevious(attune, marker, emptyCart);
    attune.identify(person.userId, person.traits, { signature: person.signature });
    attune.track('user.signed_in', { method: 'demo' });
    followIdentity(attune, { userId: person.userId, signature: person.signature }, marker);
  } catch {
    // The SDK failed: the person is signed in to the shop all the same.
  }
  await sendQueuedEvents(attune, flushBudgetMs);
}
