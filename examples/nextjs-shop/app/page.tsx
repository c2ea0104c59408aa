/** Home: the hero banner slot and the recommendations slot (popular products by default). */
import { Slot } from '@/components/slot';
import { popularProducts } from '@/lib/catalog';
import { DEFAULT_HERO_HTML, recommendationsHtml } from '@/lib/slot-html';

export const dynamic = 'force-dynamic';

export default async function Home() {
  const popular = await popularProducts(8);
  return (
    <>
      <Slot name="hero" html={DEFAULT_HERO_HTML} />
      <Slot name="recommendations" html={recommendationsHtml('Popular right now', popular)} />
    </>
  );
}
