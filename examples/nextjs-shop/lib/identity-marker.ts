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
 * The person left (sign-out, erasure): the note is cleared and this page stops following
 * consent changes for them, so a later grant (here or in another tab) does not identify them again.
 */
export function forgetIdentity(marker: IdentityMarker = storedIdentityMarker): void {
  for (const stop of following) stop();
  following.clear();
  marker.clear();
}
