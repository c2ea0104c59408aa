'use client';
/**
 * Checkout with a fake payment: the shop's server "charges" the card (any 16 digits; the
 * test card 4000 0000 0000 0002 is declined), prices the lines from the catalog and makes
 * up an order id; it stores nothing (app/api/orders). The browser sends `checkout.started`
 * and `order.completed` with the order's lines: that event is the only trace of the order.
 * Once paid, the shopper sees the order id before that event is sent (lib/checkout.ts).
 */
import { useEffect, useRef, useState } from 'react';
import { type CartLine, cartTotal, productRef, readCart } from '@/lib/cart';
import { completeOrder } from '@/lib/checkout';
import { useAttune } from './attune';
import { fmt } from './cart-view';

export function CheckoutForm() {
  const attune = useAttune();
  const started = useRef(false);
  const [lines, setLines] = useState<CartLine[]>([]);
  const [orderId, setOrderId] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  useEffect(() => setLines(readCart()), []);
  useEffect(() => {
    if (attune === undefined || started.current || lines.length === 0) return;
    started.current = true;
    const first = lines[0];
    attune.track('checkout.started', {
      value: cartTotal(lines),
      currency: first?.currency ?? 'EUR',
      products: lines.map(productRef),
    });
  }, [attune, lines]);

  if (orderId !== undefined) {
    return (
      <div data-testid="order-confirmed">
        <h2>Thank you!</h2>
        <p>
          Order <b data-testid="order-id">{orderId}</b> is confirmed.
        </p>
        <a href="/">Continue shopping</a>
      </div>
    );
  }
  if (lines.length === 0) return <p>Your cart is empty.</p>;
  const currency = lines[0]?.currency ?? 'EUR';
  const total = cartTotal(lines);

  return (
    <form
      className="checkout"
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        setBusy(true);
        setError(undefined);
        void fetch('/api/orders', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            name: form.get('name'),
            card: form.get('card'),
            lines: lines.map((l) => ({ productId: l.productId, quantity: l.quantity })),
          }),
        })
          .then(async (res) => {
            const body = (await res.json()) as { orderId?: string; total?: number; error?: string };
            if (!res.ok || body.orderId === undefined) {
              setError(body.error ?? 'Payment failed');
              return;
            }
            // The card is charged: the cart empties and the order id shows before any send (lib/checkout.ts).
            await completeOrder(
              attune,
              { orderId: body.orderId, total: body.total ?? total, currency, lines },
              { confirm: setOrderId },
            );
          })
          .catch(() => setError('Could not reach the shop; try again'))
          .finally(() => setBusy(false));
      }}
    >
      <p>
        {lines.length} item(s), total <b>{fmt(total, currency)}</b>
      </p>
      <label>
        Name on card <input name="name" required defaultValue="Ada Lovelace" />
      </label>
      <label>
        Card number (fake){' '}
        <input name="card" required defaultValue="4242 4242 4242 4242" inputMode="numeric" />
      </label>
      <button type="submit" className="primary" disabled={busy} data-testid="pay">
        Pay {fmt(total, currency)}
      </button>
      {error ? <p role="alert">{error}</p> : null}
    </form>
  );
}
