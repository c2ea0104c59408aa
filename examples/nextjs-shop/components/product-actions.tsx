'use client';
/**
 * A product page's interactive part: records the product view once per page load and
 * adds the product to the cart (`cart.item.added`). It does not reload the page: the Worker
 * fills the slots in the HTML of a page load, so the shopper sees them re-tailored to the new
 * cart when they reload or open another page, not on the page they added from.
 */
import { useEffect, useRef, useState } from 'react';
import { addLine, type CartLine } from '@/lib/cart';
import { MAX_LINE_QUANTITY } from '@/lib/order-request';
import { useAttune } from './attune';

type ProductInfo = Omit<CartLine, 'quantity'>;

export function ProductActions({ product }: { product: ProductInfo }) {
  const attune = useAttune();
  const viewed = useRef(false);
  const [added, setAdded] = useState(false);
  const [full, setFull] = useState(false);

  useEffect(() => {
    if (attune === undefined || viewed.current) return;
    viewed.current = true;
    attune.track('product.viewed', {
      productId: product.productId,
      sku: product.slug,
      name: product.title,
      category: product.category,
      tags: product.tags,
      price: product.price,
      currency: product.currency,
    });
  }, [attune, product]);

  return (
    <div className="actions">
      <button
        type="button"
        className="primary"
        data-testid="add-to-cart"
        onClick={() => {
          // At the most one order takes, nothing was added: no event says otherwise.
          if (!addLine(product)) {
            setFull(true);
            return;
          }
          attune?.track('cart.item.added', {
            productId: product.productId,
            sku: product.slug,
            name: product.title,
            category: product.category,
            tags: product.tags,
            price: product.price,
            currency: product.currency,
            quantity: 1,
          });
          setAdded(true);
        }}
      >
        Add to cart
      </button>
      {full ? (
        <span role="status" data-testid="cart-line-full">
          Your cart holds {MAX_LINE_QUANTITY}, the most one order takes. <a href="/cart">View cart</a>
        </span>
      ) : added ? (
        <span role="status" data-testid="added">
          Added. <a href="/cart">View cart</a>
        </span>
      ) : null}
    </div>
  );
}
