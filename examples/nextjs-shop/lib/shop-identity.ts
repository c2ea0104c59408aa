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
 *   lived in memory only and the navigation lost it; or a consent that stores no ids, as a
 *   withdrawal here or in another tab, or GPC removing the only purpose, wiped the stored
 *   ids): identify again, with the signature the server passes to every page, and note it
 *   once consent lets the SDK store it.
 * With a session, every page follows consent changes (followIdentity): a withdrawal made on a
 * page that did not identify left the note naming a person the SDK no longer held, and the
 * person's later events went without their user id.
 */
import type { Attune } from '@attune/browser-sdk';
import { PURPOSES } from '@attune/shared-schema/constants';
import { followWhileIdentified, type IdentityMarker, storedIdentityMarker } from './identity-marker.ts';
import { emptyStoredCart, signOut } from './sign-out.ts';

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

/** What following the session's identity uses of the SDK. */
export type FollowingSdk = Pick<Attune, 'identify'> & {
  consent: ConsentView & Pick<Attune['consent'], 'onChange'>;
};

/**
 * Keeps the marker true to what the SDK stores for the session's person, now and after each
 * consent change on this page (made here or in another tab). Called once the SDK holds the
 * person (identified on this page, or loaded from its storage). While consent lets the SDK
 * store ids, the person is noted; a consent that stores none clears the note, as the SDK
 * then holds no identity to rely on (a withdrawal wipes the stored ids, and another tab's
 * takes them from this tab's memory too), and the next grant identifies the person again.
 */
export function followIdentity(
  attune: FollowingSdk,
  session: SessionIdentity,
  marker: IdentityMarker = storedIdentityMarker,
): void {
  /** Whether this page's SDK holds the person in memory (false once a consent change may have dropped them). */
  let held = true;
  const note = () => (storesIdentity(attune.consent) ? marker.write(session.userId) : marker.clear());
  note();
  // Stopped when the person leaves, on this page or in another tab (sign-out, erasure): a later
  // grant must not identify them again for whoever is next.
  followWhileIdentified(
    attune.consent.onChange(() => {
      // Another tab signed someone else in: this page's session is stale, and its note would
      // overwrite theirs.
      const noted = marker.read();
      if (noted !== undefined && noted !== session.userId) return;
      if (!storesIdentity(attune.consent)) held = false;
      else if (!held) {
        attune.identify(session.userId, {}, { signature: session.signature });
        held = true;
      }
      note();
    }),
  );
}

/**
 * The SDK still holds someone other than the person now signed in (their session ended
 * without Sign-out): forget them, and their cart, as sign-out would have, or this browser's
 * history under them would be merged into the new person, who would also see and could
 * check out their items.
 */
export function forgetPrevious(
  attune: Pick<Attune, 'reset'>,
  marker: IdentityMarker,
  emptyCart: () => void,
): void {
  attune.reset();
  marker.clear();
  emptyCart();
}

export type IdentitySdk = Pick<Attune, 'flush' | 'reset' | 'identify'> & {
  consent: Pick<Attune['consent'], 'get' | 'onChange'>;
};

export interface SettleIdentityOptions {
  marker?: IdentityMarker;
  /** Empties this browser's cart (lib/cart.ts), as sign-out does. */
  emptyCart?: () => void;
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
  const {
    marker = storedIdentityMarker,
    emptyCart = emptyStoredCart,
    signOut: endPreviousSession = (a) => signOut(a),
  } = options;
  try {
    const held = marker.read();
    if (held !== undefined && session === undefined) {
      // Kept until the shop confirmed: a sign-out that could not reach it is tried again on the next page.
      if (!(await endPreviousSession(attune))) return 'ready';
      marker.clear();
      return 'signed-out';
    }
    if (session === undefined) return 'ready';
    if (held !== undefined && held !== session.userId) forgetPrevious(attune, marker, emptyCart);
    // A consent that stores no ids holds no identity, whatever the note says: the stored ids
    // were wiped (a withdrawal, here or in another tab; GPC removing the only purpose).
    if (!storesIdentity(attune.consent)) marker.clear();
    if (marker.read() !== session.userId)
      attune.identify(session.userId, {}, { signature: session.signature });
    followIdentity(attune, session, marker);
  } catch {
    // The SDK or storage failed: the page works without it.
  }
  return 'ready';
}
