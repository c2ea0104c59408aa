/**
 * Sign-in in the browser: the SDK is told who signed in, and a send that never answers
 * cannot keep the person on the sign-in page (the session cookie is already set).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { identifySignedIn, type SignedIn } from './sign-in.ts';
import { SIGN_OUT_FLUSH_BUDGET_MS } from './sign-out.ts';

const ADA: SignedIn = { userId: 'user_ada', signature: 'a'.repeat(64), traits: { name: 'Ada' } };

function sdk(flush: () => Promise<void>) {
  const calls: string[] = [];
  return {
    calls,
    attune: {
      identify: (userId: string) => {
        calls.push(`identify ${userId}`);
      },
      track: (name: string) => {
        calls.push(`track ${name}`);
      },
      flush: () => {
        calls.push('flush');
        return flush();
      },
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('sign-in', () => {
  it('identifies the person, then sends it', async () => {
    const s = sdk(async () => {});
    await identifySignedIn(s.attune, ADA);
    expect(s.calls).toEqual(['identify user_ada', 'track user.signed_in', 'flush']);
  });

  it('goes on after the time budget when the send never answers', async () => {
    vi.useFakeTimers();
    const s = sdk(() => new Promise<void>(() => {}));
    let finished = false;
    const done = identifySignedIn(s.attune, ADA).then(() => {
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS);
    expect(finished).toBe(true);
    await done;
  });

  it('goes on when the send fails', async () => {
    const s = sdk(() => Promise.reject(new Error('offline')));
    await expect(identifySignedIn(s.attune, ADA)).resolves.toBeUndefined();
  });
});
