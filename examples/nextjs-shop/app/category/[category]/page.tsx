/** A category page: every product of one category. */
import { notFound } from 'next/navigation';
import { ProductGrid } from '@/components/product-grid';
import { productsInCategory } from '@/lib/catalog';

export const dynamic = 'force-dynamic';

export default async function CategoryPage({ params }: { params: Promise<{ category: string }> }) {
  const { category } = await params;
  const name = decodeURIComponent(category);
  const products = await productsInCategory(name);
  if (products.length === 0) notFound();
  return (
    <>
      <h1 className="capitalize">{name}</h1>
      <p className="muted">{products.length} products</p>
      <ProductGrid products={products} />
    </>
  );
}
