/**
 * The cart never holds what checkout refuses: one product's line stops at the most an order
 * takes (app/api/orders answers 400 above it), and says so to the caller.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addLine, type CartLine, readCart } from './cart.ts';
import { MAX_LINE_QUANTITY } from './order-request.ts';

const TENT: Omit<CartLine, 'quantity'> = {
  productId: 'p-1',
  slug: 'tent',
  title: 'Tent',
  category: 'outdoor',
  tags: [],
  price: 10,
  currency: 'EUR',
};

beforeEach(() => {
  const stored = new Map<string, string>();
  vi.stubGlobal('localStorage', {
    getItem: (key: string) => stored.get(key) ?? null,
    setItem: (key: string, value: string) => stored.set(key, value),
  });
  vi.stubGlobal('window', new EventTarget());
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('adding to the cart', () => {
  it('adds one at a time up to the most an order takes, then adds nothing', () => {
    expect(MAX_LINE_QUANTITY).toBe(99);
    for (let i = 0; i < MAX_LINE_QUANTITY; i += 1) expect(addLine(TENT)).toBe(true);
    expect(readCart()).toMatchObject([{ productId: 'p-1', quantity: 99 }]);
    expect(addLine(TENT)).toBe(false);
    expect(readCart()).toMatchObject([{ productId: 'p-1', quantity: 99 }]);
    // Another product still goes in.
    expect(addLine({ ...TENT, productId: 'p-2', slug: 'stove' })).toBe(true);
    expect(readCart().map((l) => [l.productId, l.quantity])).toEqual([
      ['p-1', 99],
      ['p-2', 1],
    ]);
  });
});
