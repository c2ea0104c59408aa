/**
 * What the browser does once the shop's server has charged the card: record
 * `order.completed`, empty the cart and show the order id at once, and only then send the
 * queued events, for at most the sign-out budget. Waiting for the send first left a shopper
 * whose send hung with a disabled Pay button and no order id after being charged, and one
 * who reloaded then paid again.
 */
import type { Attune } from '@attune/browser-sdk';
import { type CartLine, productRef } from './cart.ts';
import { emptyStoredCart, SIGN_OUT_FLUSH_BUDGET_MS, sendQueuedEvents } from './sign-out.ts';

export interface PaidOrder {
  orderId: string;
  total: number;
  currency: string;
  lines: CartLine[];
}

export interface CompleteOrderOptions {
  /** Empties the stored cart (lib/cart.ts), as sign-out does. */
  emptyCart?: () => void;
  /** Shows the confirmation with the order id. */
  confirm: (orderId: string) => void;
  flushBudgetMs?: number;
}

/** Confirms a paid order to the shopper, then sends its event (bounded); never rejects. */
export async function completeOrder(
  attune: Pick<Attune, 'track' | 'flush'> | undefined,
  order: PaidOrder,
  { emptyCart = emptyStoredCart, confirm, flushBudgetMs = SIGN_OUT_FLUSH_BUDGET_MS }: CompleteOrderOptions,
): Promise<void> {
  try {
    attune?.track('order.completed', {
      orderId: order.orderId,
      total: order.total,
      currency: order.currency,
      products: order.lines.map(productRef),
    });
  } catch {
    // The SDK failed: the shopper paid all the same and must see it.
  }
  try {
    emptyCart();
  } catch {
    // Storage blocked: the confirmation matters more than the stale cart.
  }
  confirm(order.orderId);
  // The page may stay open: the event goes now if it can, else by the SDK's own retry or on leaving.
  await sendQueuedEvents(attune, flushBudgetMs);
}
