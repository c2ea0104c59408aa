/**
 * After the card is charged the shopper sees the order at once, whatever sending the
 * queued events does: a send that never answers must not leave Pay disabled and no order
 * id (a shopper who reloads then pays twice).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { completeOrder, type PaidOrder } from './checkout.ts';
import { SIGN_OUT_FLUSH_BUDGET_MS } from './sign-out.ts';

const ORDER: PaidOrder = {
  orderId: 'ord_1',
  total: 20,
  currency: 'EUR',
  lines: [
    {
      productId: 'p-1',
      slug: 'tent',
      title: 'Tent',
      category: 'outdoor',
      tags: [],
      price: 10,
      currency: 'EUR',
      quantity: 2,
    },
  ],
};

/** A shopper's screen: the cart and the confirmation, with the SDK calls in order. */
function checkout(flush: () => Promise<void>) {
  const calls: string[] = [];
  const screen = { cartEmptied: false, orderId: undefined as string | undefined };
  const attune = {
    track: (name: string) => {
      calls.push(`track ${name}`);
    },
    flush: () => {
      calls.push('flush');
      return flush();
    },
  };
  const options = {
    emptyCart: () => {
      screen.cartEmptied = true;
    },
    confirm: (orderId: string) => {
      screen.orderId = orderId;
    },
  };
  return { calls, screen, attune, options };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('a paid order', () => {
  it('is confirmed and the cart emptied while the send still hangs; the send is given up after the budget', async () => {
    vi.useFakeTimers();
    const c = checkout(() => new Promise<void>(() => {}));
    let finished = false;
    const done = completeOrder(c.attune, ORDER, c.options).then(() => {
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    // What the shopper sees before any send answered.
    expect(c.screen).toEqual({ cartEmptied: true, orderId: 'ord_1' });
    expect(c.calls).toEqual(['track order.completed', 'flush']);
    expect(finished).toBe(false);
    await vi.advanceTimersByTimeAsync(SIGN_OUT_FLUSH_BUDGET_MS);
    await done;
    expect(finished).toBe(true);
  });

  it('is confirmed when the send fails or the SDK has not started', async () => {
    const failing = checkout(() => Promise.reject(new Error('offline')));
    await completeOrder(failing.attune, ORDER, failing.options);
    expect(failing.screen).toEqual({ cartEmptied: true, orderId: 'ord_1' });

    const noSdk = checkout(async () => {});
    await completeOrder(undefined, ORDER, noSdk.options);
    expect(noSdk.screen).toEqual({ cartEmptied: true, orderId: 'ord_1' });
  });

  it('is confirmed when the cart cannot be emptied (storage blocked)', async () => {
    const c = checkout(async () => {});
    await completeOrder(c.attune, ORDER, {
      ...c.options,
      emptyCart: () => {
        throw new Error('QuotaExceededError');
      },
    });
    expect(c.screen.orderId).toBe('ord_1');
  });
});
