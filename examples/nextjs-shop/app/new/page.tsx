/** New arrivals (the demo has no dates: the most popular in stock). */
import { ProductGrid } from '@/components/product-grid';
import { popularProducts } from '@/lib/catalog';

export const dynamic = 'force-dynamic';

export default async function NewPage() {
  return (
    <>
      <h1>New arrivals</h1>
      <ProductGrid products={await popularProducts(24)} />
    </>
  );
}
