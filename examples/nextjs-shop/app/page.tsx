/** Home: the hero banner slot and the recommendations slot (popular products by default). */
import { CatalogUnavailable } from '@/components/catalog-unavailable';
import { Slot } from '@/components/slot';
import { popularProducts, readCatalog } from '@/lib/catalog';
import { DEFAULT_HERO_HTML, recommendationsHtml } from '@/lib/slot-html';

export const dynamic = 'force-dynamic';

export default async function Home() {
  const popular = await readCatalog(() => popularProducts(8));
  if (!popular.ok) return <CatalogUnavailable message={popular.message} />;
  return (
    <>
      <Slot name="hero" html={DEFAULT_HERO_HTML} />
      <Slot name="recommendations" html={recommendationsHtml('Popular right now', popular.value)} />
    </>
  );
}
