/**
 * Sign-out must always finish and always make the SDK forget the person, whatever
 * sending the queued events does (fails, or never answers).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  SIGN_OUT_FLUSH_BUDGET_MS,
  SIGN_OUT_REQUEST_BUDGET_MS,
  sendQueuedEvents,
  signOut,
} from './sign-out.ts';

/** A stand-in SDK that records the order of calls, with the flush the test needs. */
function sdk(flush: () => Promise<void>) {
  const calls: string[] = [];
  return {
    calls,
    attune: {
      flush: () => {
        calls.push('flush');
        return flush();
      },
      reset: () => {
        calls.push('reset');
      },
    },
    endSession: (status = 200) =>
      vi.fn(async () => {
        calls.push('end session');
        return new Response('{"ok":true}', { status });
      }),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('sign-out', () => {
  it('sends the queued events, then forgets the person, then ends the session', async () => {
    const s = sdk(async () => {});
    expect(await signOut(s.attune, { endSession: s.endSession() })).toBe(true);
    expect(s.calls).toEqual(['flush', 'reset', 'end session']);
  });

  it('completes and still forgets the person when sending the events fails', async () => {
    const s = sdk(() => Promise.reject(new Error('network down')));
    expect(await signOut(s.attune, { endSession: s.endSession() })).toBe(true);
    expect(s.calls).toEqual(['flush', 'reset', 'end session']);
  });

  it('completes when sending the events throws at once', async () => {
    const s = sdk(() => {
      throw new Error('SDK broken');
    });
    expect(await signOut(s.attune, { endSession: s.endSession() })).toBe(true);
    expect(s.calls).toEqual(['flush', 'reset', 'end session']);
  });

  it('does not wait for events that never go: it goes on after the time budget', async () => {
    vi.useFakeTimers();
    const s = sdk(() => new Promise<void>(() => {}));
    const done = signOut(s.attune, { endSession: s.endSession() });
    await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS);
    expect(await done).toBe(true);
    expect(s.calls).toEqual(['flush', 'reset', 'end session']);
  });

  it('reports failure when the shop cannot be reached, with the person already forgotten by the SDK', async () => {
    const s = sdk(async () => {});
    const offline = vi.fn(() => Promise.reject(new TypeError('Failed to fetch')));
    expect(await signOut(s.attune, { endSession: offline })).toBe(false);
    expect(s.calls).toEqual(['flush', 'reset']);
    expect(offline).toHaveBeenCalledOnce();
  });

  it('reports failure when the shop never answers, after the time budget, keeping the cart', async () => {
    vi.useFakeTimers();
    const s = sdk(async () => {});
    const emptyCart = vi.fn();
    let aborted = false;
    const hanging = (signal: AbortSignal) =>
      new Promise<Response>(() => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
      });
    const done = signOut(s.attune, { endSession: hanging, emptyCart });
    await vi.advanceTimersByTimeAsync(SIGN_OUT_REQUEST_BUDGET_MS);
    expect(await done).toBe(false);
    expect(aborted).toBe(true);
    expect(emptyCart).not.toHaveBeenCalled();
  });

  it('reports failure when the shop refuses (the session was not ended)', async () => {
    const s = sdk(async () => {});
    expect(await signOut(s.attune, { endSession: s.endSession(500) })).toBe(false);
    expect(s.calls).toEqual(['flush', 'reset', 'end session']);
  });

  it('still ends the session before the SDK has started', async () => {
    const endSession = vi.fn(async () => new Response('{"ok":true}'));
    expect(await signOut(undefined, { endSession })).toBe(true);
    expect(endSession).toHaveBeenCalledOnce();
  });
});

describe('the cart at sign-out (a shared computer)', () => {
  it('is emptied once the session ended, so the next person does not see or buy the items left', async () => {
    const s = sdk(async () => {});
    const emptyCart = vi.fn(() => {
      s.calls.push('empty cart');
    });
    expect(await signOut(s.attune, { endSession: s.endSession(), emptyCart })).toBe(true);
    expect(s.calls).toEqual(['flush', 'reset', 'end session', 'empty cart']);
  });

  it('is kept when sign-out failed: the person is still signed in and can try again', async () => {
    const s = sdk(async () => {});
    const emptyCart = vi.fn();
    expect(await signOut(s.attune, { endSession: s.endSession(500), emptyCart })).toBe(false);
    expect(
      await signOut(s.attune, {
        endSession: () => Promise.reject(new TypeError('Failed to fetch')),
        emptyCart,
      }),
    ).toBe(false);
    expect(emptyCart).not.toHaveBeenCalled();
  });
});

describe('sending the queued events before erasure', () => {
  it('never rejects, and gives up after the time budget', async () => {
    await expect(
      sendQueuedEvents({ flush: () => Promise.reject(new Error('offline')) }),
    ).resolves.toBeUndefined();
    vi.useFakeTimers();
    let settled = false;
    const hanging = sendQueuedEvents({ flush: () => new Promise<void>(() => {}) }).then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS - 1);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await hanging;
    expect(settled).toBe(true);
  });
});
