/** A grid of product cards (server-rendered, plain links: every page load passes the Worker). */
import { formatPrice, type Product } from '@/lib/catalog';

export function ProductGrid({ products }: { products: readonly Product[] }) {
  return (
    <ul className="cards">
      {products.map((p) => (
        <li className="card" key={p.id} data-product-id={p.id} data-category={p.category}>
          <a href={`/products/${encodeURIComponent(p.slug)}`}>
            {/* biome-ignore lint/performance/noImgElement: local SVGs; next/image adds nothing here */}
            <img src={p.image} alt="" width={160} height={120} loading="lazy" />
            <span className="card-title">{p.title}</span>
            <span className="card-price">{formatPrice(p.price, p.currency)}</span>
          </a>
        </li>
      ))}
    </ul>
  );
}
