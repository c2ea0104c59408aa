/**
 * "Delete my data" in the browser: it names this browser's anonymous id, and forgets that
 * id (reset) only after an erasure that had someone to erase and succeeded.
 */
import { describe, expect, it, vi } from 'vitest';
import { deleteMyData } from './delete-my-data.ts';

const ID = '01JD8X3Q4Z5R6S7T8V9W0XYZAB';

function sdk() {
  const calls: string[] = [];
  return {
    calls,
    attune: {
      flush: async () => {
        calls.push('flush');
      },
      reset: () => {
        calls.push('reset');
      },
      anonymousId: () => ID,
      consent: {
        get: () => ({
          categories: {
            necessary: true,
            analytics: true,
            personalization: true,
            marketing: false,
            surveys: true,
          },
          policyVersion: '1',
          decided: true,
        }),
        set: (categories: Record<string, boolean>, source?: string) => {
          calls.push(`consent ${JSON.stringify(categories)} ${source}`);
        },
      },
    },
  };
}

const WITHDRAWN = `consent ${JSON.stringify({
  analytics: false,
  personalization: false,
  marketing: false,
  necessary: false,
  surveys: false,
})} erasure`;

function answering(status: number, body: unknown) {
  return vi.fn(async (_anonymousId: string) => Response.json(body, { status }));
}

describe('delete my data', () => {
  it('sends the queued events, names this browser’s anonymous id, then resets the SDK', async () => {
    const s = sdk();
    const requestErasure = vi.fn(async (anonymousId: string) => {
      s.calls.push(`erase ${anonymousId}`);
      return Response.json({ erased: ['anon'], references: ['01JD8X3Q4Z5R6S7T8V9W0XYZ01', '<script>'] });
    });
    // The reference is shown to the visitor: only an erasure id is taken.
    expect(await deleteMyData(s.attune, { requestErasure })).toEqual({
      kind: 'erased',
      erased: ['anon'],
      references: ['01JD8X3Q4Z5R6S7T8V9W0XYZ01'],
    });
    expect(s.calls).toEqual(['flush', `erase ${ID}`, WITHDRAWN, 'reset']);
  });

  it('withdraws every purpose before the reset, so nothing goes out for the next visitor under the erased one’s grant', async () => {
    const s = sdk();
    await deleteMyData(s.attune, { requestErasure: answering(200, { erased: ['anon'] }) });
    // Withdrawn while the SDK still names the erased visitor: the proof is theirs, not the next one's.
    expect(s.calls.slice(-2)).toEqual([WITHDRAWN, 'reset']);
  });

  it('leaves consent as it was when nothing was erased or the erasure failed', async () => {
    for (const [status, body] of [
      [200, { erased: [] }],
      [403, { error: 'this browser belongs to an account; sign in to erase it' }],
      [502, { error: 'the Attune Worker is not reachable; try again' }],
    ] as const) {
      const s = sdk();
      await deleteMyData(s.attune, { requestErasure: answering(status, body) });
      expect(s.calls.filter((c) => c.startsWith('consent'))).toEqual([]);
    }
  });

  it('empties the cart after an erasure, so the next visitor does not see or buy the erased visitor’s items', async () => {
    const s = sdk();
    const emptyCart = vi.fn(() => {
      s.calls.push('empty cart');
    });
    await deleteMyData(s.attune, { requestErasure: answering(200, { erased: ['user', 'anon'] }), emptyCart });
    expect(s.calls.at(-1)).toBe('empty cart');
  });

  it('keeps the cart when nothing was erased or the erasure failed', async () => {
    const emptyCart = vi.fn();
    for (const [status, body] of [
      [200, { erased: [] }],
      [403, { error: 'this browser belongs to an account; sign in to erase it' }],
      [502, { error: 'the Attune Worker is not reachable; try again' }],
    ] as const)
      await deleteMyData(sdk().attune, { requestErasure: answering(status, body), emptyCart });
    expect(emptyCart).not.toHaveBeenCalled();
  });

  it('has the next page ask for consent again after an erasure, and only then', async () => {
    const askConsentAgain = vi.fn();
    await deleteMyData(sdk().attune, {
      requestErasure: answering(200, { erased: ['anon'] }),
      askConsentAgain,
    });
    expect(askConsentAgain).toHaveBeenCalledTimes(1);
    askConsentAgain.mockClear();
    for (const [status, body] of [
      [200, { erased: [] }],
      [403, { error: 'this browser belongs to an account; sign in to erase it' }],
      [502, { error: 'the Attune Worker is not reachable; try again' }],
    ] as const)
      await deleteMyData(sdk().attune, { requestErasure: answering(status, body), askConsentAgain });
    expect(askConsentAgain).not.toHaveBeenCalled();
  });

  it('says nothing was erased, and keeps the id, when the edge held no one (a fresh id, e.g. after "reject all")', async () => {
    const s = sdk();
    expect(await deleteMyData(s.attune, { requestErasure: answering(200, { erased: [] }) })).toEqual({
      kind: 'nothing',
    });
    expect(s.calls).not.toContain('reset');
  });

  it('says to sign in, and keeps the id, when this browser belongs to an account', async () => {
    const s = sdk();
    const r = await deleteMyData(s.attune, {
      requestErasure: answering(403, { error: 'this browser belongs to an account; sign in to erase it' }),
    });
    expect(r).toEqual({
      kind: 'failed',
      message: 'This browser belongs to an account; sign in to erase it.',
    });
    expect(s.calls).not.toContain('reset');
  });

  it('keeps the id, and says why, when the shop could not erase', async () => {
    const s = sdk();
    const r = await deleteMyData(s.attune, {
      requestErasure: answering(502, { error: 'the Attune Worker is not reachable; try again' }),
    });
    expect(r).toEqual({ kind: 'failed', message: expect.stringMatching(/not reachable/) });
    expect(s.calls).not.toContain('reset');
  });

  it('keeps the id when the shop cannot be reached', async () => {
    const s = sdk();
    const r = await deleteMyData(s.attune, {
      requestErasure: async () => {
        throw new TypeError('fetch failed');
      },
    });
    expect(r.kind).toBe('failed');
    expect(s.calls).not.toContain('reset');
  });
});
