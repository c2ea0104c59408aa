/**
 * The SDK's identity kept in step with the shop's session on each page load: a session
 * that ended without Sign-out signs the browser out, someone else's identity is dropped,
 * and a signed-in person the SDK does not hold (signed in before choosing consent) is
 * identified again, and noted once consent lets the SDK store the id.
 */
import type { ConsentSnapshot } from '@attune/browser-sdk';
import { describe, expect, it, vi } from 'vitest';
import type { IdentityMarker } from './identity-marker.ts';
import { type SessionIdentity, settleIdentity } from './shop-identity.ts';

const ADA: SessionIdentity = { userId: 'user_ada', signature: 'a'.repeat(64) };

function memoryMarker(initial?: string): IdentityMarker & { value: string | undefined } {
  const m = {
    value: initial,
    read: () => m.value,
    write: (userId: string) => {
      m.value = userId;
    },
    clear: () => {
      m.value = undefined;
    },
  };
  return m;
}

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
