/** A product page: details, add to cart, and the recommendations and promo slots. */
import { notFound } from 'next/navigation';
import { CatalogUnavailable } from '@/components/catalog-unavailable';
import { ProductActions } from '@/components/product-actions';
import { Slot } from '@/components/slot';
import { formatPrice, getProduct, popularProducts, readCatalog } from '@/lib/catalog';
import { DEFAULT_PROMO_HTML, recommendationsHtml } from '@/lib/slot-html';

export const dynamic = 'force-dynamic';

export default async function ProductPage({ params }: { params: Promise<{ slug: string }> }) {
  const { slug } = await params;
  const read = await readCatalog(async () => {
    const product = await getProduct(decodeURIComponent(slug));
    return { product, others: product ? await popularProducts(4, product.id) : [] };
  });
  if (!read.ok) return <CatalogUnavailable message={read.message} />;
  const { product, others } = read.value;
  if (product === undefined) notFound();
  const context = { productId: product.id, category: product.category };
  return (
    <>
      <article className="product" data-product-id={product.id} data-category={product.category}>
        {/* biome-ignore lint/performance/noImgElement: local SVGs; next/image adds nothing here */}
        <img src={product.image} alt={product.title} width={480} height={360} />
        <div>
          <p className="muted capitalize">
            <a href={`/category/${encodeURIComponent(product.category)}`}>{product.category}</a>
          </p>
          <h1>{product.title}</h1>
          <p className="price">{formatPrice(product.price, product.currency)}</p>
          <p>{product.description}</p>
          <p className="muted">{product.stock > 0 ? `${product.stock} in stock` : 'Out of stock'}</p>
          <p className="tags">
            {product.tags.map((t) => (
              <span key={t} className="tag">
                {t}
              </span>
            ))}
          </p>
          <ProductActions
            product={{
              productId: product.id,
              slug: product.slug,
              title: product.title,
              category: product.category,
              tags: product.tags,
              price: product.price,
              currency: product.currency,
            }}
          />
          <Slot name="promo" html={DEFAULT_PROMO_HTML} context={context} />
        </div>
      </article>
      <Slot
        name="recommendations"
        html={recommendationsHtml('You may also like', others)}
        context={context}
      />
    </>
  );
}
