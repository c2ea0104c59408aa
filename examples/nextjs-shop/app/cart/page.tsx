/** The cart. */
import { CartView } from '@/components/cart-view';

export default function CartPage() {
  return (
    <>
      <h1>Your cart</h1>
      <CartView />
    </>
  );
}
