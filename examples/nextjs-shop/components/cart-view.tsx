'use client';
/** The cart page's contents: lines, quantities, removal (`cart.item.removed`) and the way to checkout. */
import { useEffect, useState } from 'react';
import { type CartLine, cartTotal, productRef, readCart, writeCart } from '@/lib/cart';
import { useAttune } from './attune';

export function CartView() {
  const attune = useAttune();
  const [lines, setLines] = useState<CartLine[] | undefined>(undefined);
  useEffect(() => setLines(readCart()), []);
  if (lines === undefined) return <p>Loading your cart…</p>;
  if (lines.length === 0) return <p data-testid="cart-empty">Your cart is empty.</p>;
  const currency = lines[0]?.currency ?? 'EUR';
  return (
    <div>
      <table className="cart" data-testid="cart">
        <tbody>
          {lines.map((l) => (
            <tr key={l.productId}>
              <td>
                <a href={`/products/${l.slug}`}>{l.title}</a>
              </td>
              <td>× {l.quantity}</td>
              <td>{fmt(l.price * l.quantity, l.currency)}</td>
              <td>
                <button
                  type="button"
                  onClick={() => {
                    const next = lines.filter((x) => x.productId !== l.productId);
                    writeCart(next);
                    setLines(next);
                    attune?.track('cart.item.removed', productRef(l));
                  }}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        Total: <b data-testid="cart-total">{fmt(cartTotal(lines), currency)}</b>
      </p>
      <a className="button primary" href="/checkout" data-testid="to-checkout">
        Checkout
      </a>
    </div>
  );
}

export function fmt(amount: number, currency: string): string {
  return new Intl.NumberFormat('en-GB', { style: 'currency', currency }).format(amount);
}
