/** Shipping and returns (linked from the default promo). */
export default function ShippingPage() {
  return (
    <>
      <h1>Shipping and returns</h1>
      <p>Free shipping on orders over €50. Free returns for 30 days. (This is a demo: nothing ships.)</p>
    </>
  );
}
