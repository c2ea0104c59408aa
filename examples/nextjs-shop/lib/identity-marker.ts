/**
 * The shop's note of whom it identified the SDK as (localStorage, the user id only). The
 * SDK keeps a signed-in person's user id in localStorage and does not say whom it holds,
 * so without this note a session that ended without Sign-out left the next person at the
 * browser tracked as the previous one (lib/shop-identity.ts). Sign-out and erasure clear it
 * (forgetIdentity), and stop this page following consent changes for the person who left.
 */

/** The localStorage key of the shop's marker. */
export const IDENTITY_MARKER_KEY = 'shop-identified-as';

/** Whom the shop last identified the SDK as, where the SDK stores it. */
export interface IdentityMarker {
  read(): string | undefined;
  write(userId: string): void;
  clear(): void;
}

/** The marker in localStorage; storage blocked reads as no marker (the SDK cannot store ids either). */
export const storedIdentityMarker: IdentityMarker = {
  read() {
    try {
      return localStorage.getItem(IDENTITY_MARKER_KEY) ?? undefined;
    } catch {
      return undefined;
    }
  },
  write(userId) {
    try {
      localStorage.setItem(IDENTITY_MARKER_KEY, userId);
    } catch {
      // Blocked: the SDK cannot store the user id either.
    }
  },
  clear() {
    try {
      localStorage.removeItem(IDENTITY_MARKER_KEY);
    } catch {
      // Blocked: nothing was written.
    }
  },
};

/** Stops this page's following of consent changes for the signed-in person (lib/shop-identity.ts). */
const following = new Set<() => void>();

/** Registers how to stop following the signed-in person's consent changes on this page. */
export function followWhileIdentified(stop: () => void): void {
  following.add(stop);
}

/**
 * The localStorage key another tab's forgetIdentity writes (a time, no id): every open tab of
 * the browser follows the same person, and all of them must stop when that person leaves.
 */
export const IDENTITY_LEFT_KEY = 'shop-identity-left';

function stopFollowing(): void {
  for (const stop of following) stop();
  following.clear();
}

/**
 * The person left (sign-out, erasure): the note is cleared and every open tab stops following
 * consent changes for them, so a later grant (in any tab) does not identify them again for
 * whoever is next. This page stops at once; the others on the `storage` event that the
 * write of IDENTITY_LEFT_KEY fires there (listenForLeaving).
 */
export function forgetIdentity(marker: IdentityMarker = storedIdentityMarker): void {
  stopFollowing();
  marker.clear();
  try {
    localStorage.setItem(IDENTITY_LEFT_KEY, String(Date.now()));
  } catch {
    // Blocked: no tab stored the person's ids either.
  }
}

/**
 * Stops this page following the signed-in person when another tab says they left. Before,
 * a tab left open went on following: the next person's grant made it identify the person
 * who had signed out, and write their note back.
 */
export function listenForLeaving(target: Pick<Window, 'addEventListener'>): void {
  target.addEventListener('storage', (event) => {
    if (event.key === IDENTITY_LEFT_KEY) stopFollowing();
  });
}

if (typeof window !== 'undefined') listenForLeaving(window);
