/**
 * Sign-in in the browser: the shop's answer is read without ever throwing (a network error
 * or an answer that is not JSON says the shop could not be reached, instead of nothing), the
 * SDK is told who signed in, and a send that never answers cannot keep the person on the
 * sign-in page (the session cookie is already set).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryMarker } from './identity-marker.test-support.ts';
import { identifySignedIn, requestSignIn, type SignedIn, UNREACHABLE } from './sign-in.ts';
import { SIGN_OUT_FLUSH_BUDGET_MS } from './sign-out.ts';

const ADA: SignedIn = { userId: 'user_ada', signature: 'a'.repeat(64), traits: { name: 'Ada' } };

function sdk(flush: () => Promise<void>, granted = true) {
  const calls: string[] = [];
  return {
    calls,
    attune: {
      reset: () => {
        calls.push('reset');
      },
      consent: {
        get: () => ({ categories: { analytics: granted }, policyVersion: '1', decided: true }),
        onChange: () => () => {},
      },
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
    await identifySignedIn(s.attune, ADA, { marker: memoryMarker() });
    expect(s.calls).toEqual(['identify user_ada', 'track user.signed_in', 'flush']);
  });

  it('forgets the person the browser was identified as before, so their history is not merged into the new one', async () => {
    const s = sdk(async () => {});
    const marker = memoryMarker('user_grace');
    await identifySignedIn(s.attune, ADA, { marker });
    expect(s.calls).toEqual(['reset', 'identify user_ada', 'track user.signed_in', 'flush']);
    expect(marker.value).toBe('user_ada');
  });

  it('empties the cart of the person the browser was identified as, so the new one does not see or check out their items', async () => {
    const emptyCart = vi.fn();
    await identifySignedIn(sdk(async () => {}).attune, ADA, {
      marker: memoryMarker('user_grace'),
      emptyCart,
    });
    expect(emptyCart).toHaveBeenCalledOnce();
    // Their own cart, or one made before anyone signed in here, stays.
    emptyCart.mockClear();
    await identifySignedIn(sdk(async () => {}).attune, ADA, { marker: memoryMarker('user_ada'), emptyCart });
    await identifySignedIn(sdk(async () => {}).attune, ADA, { marker: memoryMarker(), emptyCart });
    expect(emptyCart).not.toHaveBeenCalled();
  });

  it('notes the person only when consent lets the SDK store the id (else the next page identifies again)', async () => {
    const s = sdk(async () => {}, false);
    const marker = memoryMarker();
    await identifySignedIn(s.attune, ADA, { marker });
    expect(s.calls[0]).toBe('identify user_ada');
    expect(marker.value).toBeUndefined();
  });

  it('goes on after the time budget when the send never answers', async () => {
    vi.useFakeTimers();
    const s = sdk(() => new Promise<void>(() => {}));
    let finished = false;
    const done = identifySignedIn(s.attune, ADA, { marker: memoryMarker() }).then(() => {
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS);
    expect(finished).toBe(true);
    await done;
  });

  it('goes on when the send fails', async () => {
    const s = sdk(() => Promise.reject(new Error('offline')));
    await expect(identifySignedIn(s.attune, ADA, { marker: memoryMarker() })).resolves.toBeUndefined();
  });
});

describe('asking the shop to sign in', () => {
  const answering = (res: () => Promise<Response>) => vi.fn(res);

  it('reads the signed person from the answer', async () => {
    const post = answering(async () => Response.json(ADA));
    expect(await requestSignIn('user_ada', post)).toEqual({ ok: true, person: ADA });
    expect(post).toHaveBeenCalledWith('/api/signin', expect.objectContaining({ method: 'POST' }));
  });

  it.each([
    ['the network fails', async () => Promise.reject(new TypeError('Failed to fetch'))],
    [
      'the answer is not JSON (a proxy error page)',
      async () => new Response('<html>Bad gateway', { status: 502 }),
    ],
    ['the answer is cut short', async () => new Response('{"userId":', { status: 200 })],
    ['the answer is JSON null', async () => new Response('null', { status: 200 })],
  ])('says the shop could not be reached when %s', async (_, res) => {
    expect(await requestSignIn('user_ada', answering(res))).toEqual({ ok: false, error: UNREACHABLE });
    expect(UNREACHABLE).toMatch(/^Could not reach the shop/);
  });

  it("shows the shop's own refusal, or a plain failure when it names none", async () => {
    const refused = answering(async () => Response.json({ error: 'unknown demo user' }, { status: 400 }));
    expect(await requestSignIn('nobody', refused)).toEqual({ ok: false, error: 'unknown demo user' });
    const empty = answering(async () => Response.json({}, { status: 200 }));
    expect(await requestSignIn('user_ada', empty)).toEqual({ ok: false, error: 'Sign-in failed' });
  });
});
