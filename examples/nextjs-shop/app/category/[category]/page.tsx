/** A category page: every product of one category (optionally one tag: `?tag=accessory`). */
import { notFound } from 'next/navigation';
import { CatalogUnavailable } from '@/components/catalog-unavailable';
import { ProductGrid } from '@/components/product-grid';
import { productsInCategory, readCatalog } from '@/lib/catalog';

export const dynamic = 'force-dynamic';

export default async function CategoryPage({
  params,
  searchParams,
}: {
  params: Promise<{ category: string }>;
  searchParams: Promise<{ tag?: string | string[] }>;
}) {
  const { category } = await params;
  const { tag } = await searchParams;
  const name = decodeURIComponent(category);
  const read = await readCatalog(() => productsInCategory(name));
  if (!read.ok) return <CatalogUnavailable message={read.message} />;
  const all = read.value;
  if (all.length === 0) notFound();
  const products = typeof tag === 'string' ? all.filter((p) => p.tags.includes(tag)) : all;
  return (
    <>
      <h1 className="capitalize">{name}</h1>
      <p className="muted">{products.length} products</p>
      <ProductGrid products={products} />
    </>
  );
}
