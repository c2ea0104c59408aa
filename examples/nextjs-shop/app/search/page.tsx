/** Search: matches title, category, tags and description; records `search.performed`. */
import { CatalogUnavailable } from '@/components/catalog-unavailable';
import { ProductGrid } from '@/components/product-grid';
import { TrackSearch } from '@/components/track-search';
import { readCatalog, searchProducts } from '@/lib/catalog';

export const dynamic = 'force-dynamic';

export default async function SearchPage({
  searchParams,
}: {
  searchParams: Promise<{ q?: string | string[] }>;
}) {
  const { q } = await searchParams;
  const query = (typeof q === 'string' ? q : '').slice(0, 256);
  const found = await readCatalog(() => searchProducts(query));
  if (!found.ok) return <CatalogUnavailable message={found.message} />;
  const results = found.value;
  return (
    <>
      <h1>Search</h1>
      <form action="/search" className="search-page">
        <input type="search" name="q" defaultValue={query} aria-label="Search products" />
        <button type="submit">Search</button>
      </form>
      {query === '' ? null : (
        <p className="muted" data-testid="search-count">
          {results.length} result(s) for “{query}”
        </p>
      )}
      {query === '' ? null : <TrackSearch query={query} results={results.length} />}
      <ProductGrid products={results.slice(0, 48)} />
    </>
  );
}
