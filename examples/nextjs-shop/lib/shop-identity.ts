/**
 * The identity the shop gave the SDK, kept in step with the shop's session on every page.
 * The SDK keeps a signed-in person's user id in localStorage and does not say whom it
 * holds, so the shop notes it in a marker of its own (lib/identity-marker.ts) when the SDK
 * may store it. On each page load, before the page is tracked:
 * - a marker but no session (the cookie expired or was cleared, no Sign-out pressed): the
 *   sign-out sequence runs (lib/sign-out.ts), or the next person at the browser would be
 *   tracked, and personalized at the edge through `attune_aid`, as the one who left;
 * - a marker naming someone other than the session's person: the SDK forgets them first;
 * - a session the SDK does not hold (signed in before choosing consent, when identify()
 *   lived in memory only and the navigation lost it): identify again, with the signature
 *   the server passes to every page, and note it once consent lets the SDK store it.
 */
import type { Attune } from '@attune/browser-sdk';
import { PURPOSES } from '@attune/shared-schema/constants';
import { type IdentityMarker, storedIdentityMarker } from './identity-marker.ts';
import { signOut } from './sign-out.ts';

/** The signed-in person as the server renders each page: user id and its identity signature. */
export interface SessionIdentity {
  userId: string;
  signature: string;
}

type ConsentView = Pick<Attune['consent'], 'get'>;

/** Whether the SDK stores ids under the visitor's choice (some purpose granted). */
export function storesIdentity(consent: ConsentView): boolean {
  const { decided, categories } = consent.get();
  return decided && PURPOSES.some((purpose) => categories[purpose] === true);
}

/**
 * Notes `userId` in the marker while the SDK stores it, now and after each consent change
 * on this page: a grant made later stores the id identify() kept in memory, and a
 * withdrawal wipes it (the next page identifies again).
 */
export function noteIdentity(
  attune: { consent: ConsentView & Pick<Attune['consent'], 'onChange'> },
  userId: string,
  marker: IdentityMarker = storedIdentityMarker,
): void {
  const note = () => (storesIdentity(attune.consent) ? marker.write(userId) : marker.clear());
  note();
  attune.consent.onChange(note);
}

export type IdentitySdk = Pick<Attune, 'flush' | 'reset' | 'identify'> & {
  consent: Pick<Attune['consent'], 'get' | 'onChange'>;
};

export interface SettleIdentityOptions {
  marker?: IdentityMarker;
  /** The sign-out sequence (lib/sign-out.ts): flush (bounded), reset, end the session, empty the cart. */
  signOut?: (attune: IdentitySdk) => Promise<boolean>;
}

/**
 * Brings the SDK's identity in step with the shop's session; never rejects. `signed-out`:
 * the previous person was signed out here, and the page (rendered by the edge for them)
 * should load again; `ready`: track the page.
 */
export async function settleIdentity(
  attune: IdentitySdk,
  session: SessionIdentity | undefined,
  options: SettleIdentityOptions = {},
): Promise<'signed-out' | 'ready'> {
  const { marker = storedIdentityMarker, signOut: endPreviousSession = (a) => signOut(a) } = options;
  try {
    const held = marker.read();
    if (held !== undefined && session === undefined) {
      // Kept until the shop confirmed: a sign-out that could not reach it is tried again on the next page.
      if (!(await endPreviousSession(attune))) return 'ready';
      marker.clear();
      return 'signed-out';
    }
    if (session === undefined) return 'ready';
    if (held !== undefined && held !== session.userId) {
      attune.reset();
      marker.clear();
    }
    if (marker.read() !== session.userId) {
      attune.identify(session.userId, {}, { signature: session.signature });
      noteIdentity(attune, session.userId, marker);
    }
  } catch {
    // The SDK or storage failed: the page works without it.
  }
  return 'ready';
}
