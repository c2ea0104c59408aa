/** New arrivals (the demo has no dates: the most popular in stock). */
import { CatalogUnavailable } from '@/components/catalog-unavailable';
import { ProductGrid } from '@/components/product-grid';
import { popularProducts, readCatalog } from '@/lib/catalog';

export const dynamic = 'force-dynamic';

export default async function NewPage() {
  const popular = await readCatalog(() => popularProducts(24));
  if (!popular.ok) return <CatalogUnavailable message={popular.message} />;
  return (
    <>
      <h1>New arrivals</h1>
      <ProductGrid products={popular.value} />
    </>
  );
}
