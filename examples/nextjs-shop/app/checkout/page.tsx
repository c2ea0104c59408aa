/** Checkout with a fake payment. */
import { CheckoutForm } from '@/components/checkout-form';

export default function CheckoutPage() {
  return (
    <>
      <h1>Checkout</h1>
      <CheckoutForm />
    </>
  );
}
