/**
 * The SDK's identity kept in step with the shop's session on each page load: a session
 * that ended without Sign-out signs the browser out, someone else's identity is dropped,
 * and a signed-in person the SDK does not hold (signed in before choosing consent) is
 * identified again, and noted once consent lets the SDK store the id.
 */
import type { ConsentSnapshot } from '@attune/browser-sdk';
import { describe, expect, it, vi } from 'vitest';
import { memoryMarker } from './identity-marker.test-support.ts';
import { forgetIdentity, IDENTITY_LEFT_KEY, listenForLeaving } from './identity-marker.ts';
import { type SessionIdentity, settleIdentity } from './shop-identity.ts';
import { SIGN_OUT_FLUSH_BUDGET_MS, SIGN_OUT_REQUEST_BUDGET_MS } from './sign-out.ts';

const ADA: SessionIdentity = { userId: 'user_ada', signature: 'a'.repeat(64) };

/** A stand-in SDK whose consent the test changes, with its calls in order. */
function sdk(granted: boolean) {
  const calls: string[] = [];
  const listeners: Array<(state: ConsentSnapshot) => void> = [];
  let categories: Record<string, boolean> = { analytics: granted, personalization: false, marketing: false };
  let decided = granted;
  const snapshot = (): ConsentSnapshot => ({ categories, policyVersion: '1', decided });
  return {
    calls,
    grant() {
      categories = { ...categories, analytics: true };
      decided = true;
      for (const l of listeners) l(snapshot());
    },
    attune: {
      flush: async () => {
        calls.push('flush');
      },
      reset: () => {
        calls.push('reset');
      },
      identify: (userId: string, _traits?: unknown, options?: { signature?: string }) => {
        calls.push(`identify ${userId} ${options?.signature === ADA.signature ? 'signed' : 'unsigned'}`);
      },
      consent: {
        get: snapshot,
        onChange: (listener: (state: ConsentSnapshot) => void) => {
          listeners.push(listener);
          return () => {};
        },
      },
    },
  };
}

describe('a page load with the SDK identified by the shop', () => {
  it('signs the browser out when the session ended without Sign-out (cookie expired or cleared)', async () => {
    const s = sdk(true);
    const marker = memoryMarker('user_ada');
    const signOut = vi.fn(async () => {
      s.calls.push('sign out');
      return true;
    });
    expect(await settleIdentity(s.attune, undefined, { marker, signOut })).toBe('signed-out');
    expect(signOut).toHaveBeenCalledWith(s.attune);
    expect(s.calls).not.toContain('identify user_ada signed');
    expect(marker.value).toBeUndefined();
  });

  it('keeps the note, to try again on the next page, when the shop could not be reached', async () => {
    const s = sdk(true);
    const marker = memoryMarker('user_ada');
    const signOut = vi.fn(async () => false);
    expect(await settleIdentity(s.attune, undefined, { marker, signOut })).toBe('ready');
    expect(marker.value).toBe('user_ada');
  });

  it('gets the page its SDK when the sign-out request never answers, and tries again on the next page', async () => {
    vi.useFakeTimers();
    vi.stubGlobal(
      'fetch',
      vi.fn(() => new Promise<Response>(() => {})),
    );
    try {
      const marker = memoryMarker('user_ada');
      const settled = settleIdentity(sdk(true).attune, undefined, { marker });
      await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS + SIGN_OUT_REQUEST_BUDGET_MS);
      expect(await settled).toBe('ready');
      expect(marker.value).toBe('user_ada');
    } finally {
      vi.unstubAllGlobals();
      vi.useRealTimers();
    }
  });

  it('empties the cart of the someone else it forgets, as sign-in and sign-out do', async () => {
    const s = sdk(true);
    const emptyCart = vi.fn();
    await settleIdentity(s.attune, ADA, { marker: memoryMarker('user_grace'), emptyCart });
    expect(emptyCart).toHaveBeenCalledOnce();
    // The session's own person keeps theirs.
    const same = sdk(true);
    const kept = vi.fn();
    await settleIdentity(same.attune, ADA, { marker: memoryMarker('user_ada'), emptyCart: kept });
    expect(kept).not.toHaveBeenCalled();
  });

  it('forgets someone else before identifying the session’s person', async () => {
    const s = sdk(true);
    const marker = memoryMarker('user_grace');
    const signOut = vi.fn(async () => true);
    expect(await settleIdentity(s.attune, ADA, { marker, signOut })).toBe('ready');
    expect(signOut).not.toHaveBeenCalled();
    expect(s.calls).toEqual(['reset', 'identify user_ada signed']);
    expect(marker.value).toBe('user_ada');
  });

  it('changes nothing when the SDK already holds the session’s person, or nobody is signed in', async () => {
    const held = sdk(true);
    expect(await settleIdentity(held.attune, ADA, { marker: memoryMarker('user_ada') })).toBe('ready');
    const stranger = sdk(true);
    expect(await settleIdentity(stranger.attune, undefined, { marker: memoryMarker() })).toBe('ready');
    expect([...held.calls, ...stranger.calls]).toEqual([]);
  });
});

describe('a person who signed in before choosing consent', () => {
  it('is identified on the next page, and noted once they grant a purpose', async () => {
    const s = sdk(false);
    const marker = memoryMarker();
    expect(await settleIdentity(s.attune, ADA, { marker })).toBe('ready');
    expect(s.calls).toEqual(['identify user_ada signed']);
    // Not noted yet: the SDK keeps the id in memory only, so the next page must identify again.
    expect(marker.value).toBeUndefined();
    s.grant();
    expect(marker.value).toBe('user_ada');
  });
});

/**
 * A browser holding the SDK's visitor record across page loads, as the SDK keeps it: the user
 * id is stored only while a purpose is granted (a withdrawal or refusal wipes it), another tab's
 * change is followed (its record replaces this tab's ids), and each page load reads the record
 * (the page it replaces follows nothing any more).
 */
function browser() {
  const stored: { userId?: string; categories?: Record<string, boolean> } = {};
  const marker = memoryMarker();
  const granting = (c: Record<string, boolean> | undefined) =>
    c !== undefined && ['analytics', 'personalization', 'marketing'].some((p) => c[p] === true);
  const tabs: Array<{ follow: () => void }> = [];
  /** A page load: in place of the last page (a navigation), or `alongside` it (another tab). */
  function page({ alongside = false }: { alongside?: boolean } = {}) {
    if (!alongside) tabs.pop();
    let userId = stored.userId;
    let categories = stored.categories;
    const listeners: Array<(state: ConsentSnapshot) => void> = [];
    const snapshot = (): ConsentSnapshot => ({
      categories: categories ?? {},
      policyVersion: '1',
      decided: !!categories,
    });
    const notify = () => {
      for (const l of listeners) l(snapshot());
    };
    const persist = () => {
      if (granting(categories) && userId !== undefined) stored.userId = userId;
      else delete stored.userId;
    };
    const attune = {
      flush: async () => {},
      reset: () => {
        userId = undefined;
        persist();
      },
      identify: (id: string) => {
        userId = id;
        persist();
      },
      consent: {
        get: snapshot,
        set: (choice: Record<string, boolean>) => {
          categories = { ...choice };
          stored.categories = categories;
          persist();
          for (const tab of tabs) if (tab !== self) tab.follow();
          notify();
        },
        onChange: (listener: (state: ConsentSnapshot) => void) => {
          listeners.push(listener);
          return () => {
            listeners.splice(listeners.indexOf(listener), 1);
          };
        },
      },
      /** The user id an event made now carries (none without a granted purpose: nothing is sent). */
      eventUserId: () => (granting(categories) ? userId : undefined),
    };
    const self = {
      follow: () => {
        userId = stored.userId;
        categories = stored.categories;
        notify();
      },
    };
    tabs.push(self);
    return attune;
  }
  return { page, marker, stored };
}

const ALL = { analytics: true, personalization: true, marketing: true };
const NONE = { analytics: false, personalization: false, marketing: false };

describe('a signed-in person who withdraws consent and grants it again', () => {
  it('on a later page: their events carry their user id again', async () => {
    const b = browser();
    // Signs in with "Accept all" (the page that identifies).
    const signIn = b.page();
    signIn.consent.set(ALL);
    await settleIdentity(signIn, ADA, { marker: b.marker });
    // /privacy: everything unticked and saved, on a page that did not identify.
    const privacy = b.page();
    await settleIdentity(privacy, ADA, { marker: b.marker });
    privacy.consent.set(NONE);
    // A new page, /privacy again: everything ticked and saved.
    const again = b.page();
    await settleIdentity(again, ADA, { marker: b.marker });
    again.consent.set(ALL);
    // Add to cart on the next page.
    const cart = b.page();
    await settleIdentity(cart, ADA, { marker: b.marker });
    expect(cart.eventUserId()).toBe('user_ada');
  });

  it('on the same page: their events carry their user id', async () => {
    const b = browser();
    const first = b.page();
    first.consent.set(ALL);
    await settleIdentity(first, ADA, { marker: b.marker });
    const privacy = b.page();
    await settleIdentity(privacy, ADA, { marker: b.marker });
    privacy.consent.set(NONE);
    privacy.consent.set(ALL);
    expect(privacy.eventUserId()).toBe('user_ada');
    expect(b.page().eventUserId()).toBe('user_ada');
  });

  it('withdrawn in another tab: a grant in this one carries their user id, now and on later pages', async () => {
    const b = browser();
    const first = b.page();
    first.consent.set(ALL);
    await settleIdentity(first, ADA, { marker: b.marker });
    const tabA = b.page();
    await settleIdentity(tabA, ADA, { marker: b.marker });
    const tabB = b.page({ alongside: true });
    await settleIdentity(tabB, ADA, { marker: b.marker });
    tabB.consent.set(NONE);
    tabA.consent.set(ALL);
    expect(tabA.eventUserId()).toBe('user_ada');
    const next = b.page();
    await settleIdentity(next, ADA, { marker: b.marker });
    expect(next.eventUserId()).toBe('user_ada');
  });

  it('a choice that stores no ids (GPC took the only purpose) on load: identified again, and carried once granted', async () => {
    const b = browser();
    const first = b.page();
    first.consent.set(ALL);
    await settleIdentity(first, ADA, { marker: b.marker });
    // GPC turned marketing, the only purpose left, off: the SDK wiped the stored ids.
    b.stored.categories = { analytics: false, personalization: false, marketing: false };
    delete b.stored.userId;
    const page = b.page();
    await settleIdentity(page, ADA, { marker: b.marker });
    expect(b.marker.value).toBeUndefined();
    page.consent.set({ analytics: true, personalization: false, marketing: false });
    expect(page.eventUserId()).toBe('user_ada');
    const next = b.page();
    await settleIdentity(next, ADA, { marker: b.marker });
    expect(next.eventUserId()).toBe('user_ada');
  });

  it('after the person left on this page (erasure, sign-out), a later grant does not identify them again', async () => {
    const b = browser();
    const page = b.page();
    page.consent.set(ALL);
    await settleIdentity(page, ADA, { marker: b.marker });
    page.consent.set(NONE);
    page.reset();
    forgetIdentity(b.marker);
    page.consent.set(ALL);
    expect(page.eventUserId()).toBeUndefined();
    expect(b.marker.value).toBeUndefined();
  });

  it('after the person left in another tab, the next person’s grant here does not identify them again', async () => {
    const b = browser();
    const tab = b.page();
    tab.consent.set(ALL);
    await settleIdentity(tab, ADA, { marker: b.marker });
    const window = new EventTarget();
    listenForLeaving(window as unknown as Pick<Window, 'addEventListener'>);
    // The other tab signs out: its SDK's reset reaches this one, and its forgetIdentity says so.
    b.marker.clear();
    window.dispatchEvent(Object.assign(new Event('storage'), { key: IDENTITY_LEFT_KEY }));
    tab.reset();
    // The next person refuses, then grants, in the other tab; this tab's SDK follows.
    tab.consent.set(NONE);
    tab.consent.set(ALL);
    expect(tab.eventUserId()).toBeUndefined();
    expect(b.marker.value).toBeUndefined();
  });

  it('after another tab signed someone else in, a consent change here does not note the old person', async () => {
    const b = browser();
    const tab = b.page();
    tab.consent.set(ALL);
    await settleIdentity(tab, ADA, { marker: b.marker });
    b.marker.write('user_bob');
    tab.consent.set(NONE);
    tab.consent.set(ALL);
    expect(b.marker.value).toBe('user_bob');
  });
});
