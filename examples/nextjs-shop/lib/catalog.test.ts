/**
 * The catalog's mapping of Directus rows: what the shop offers for sale, and at what price.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getProduct, listProducts, toProduct } from './catalog.ts';

const row = (fields: Record<string, unknown>) => ({
  id: 'p-1',
  slug: 'trail-boot',
  title: 'Trail boot',
  category: 'outdoor',
  tags: ['boot'],
  currency: 'EUR',
  stock: 3,
  popularity: 0.5,
  ...fields,
});

describe('a product’s price', () => {
  it('reads numbers and Directus’s decimal strings', () => {
    expect(toProduct(row({ price: 129.9 }))?.price).toBe(129.9);
    expect(toProduct(row({ price: '89.50' }))?.price).toBe(89.5);
    // A free product is a price, not a missing one.
    expect(toProduct(row({ price: 0 }))?.price).toBe(0);
  });

  it.each([
    ['null (a cleared field)', null],
    ['missing', undefined],
    ['an empty string (an import)', ''],
    ['blank', '  '],
    ['not a number', 'ask us'],
    ['negative', -5],
  ])('a row whose price is %s is not for sale', (_, price) => {
    expect(toProduct(row({ price }))).toBeUndefined();
  });
});

describe('the catalog from Directus', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('lists no product without a price, and has no page for it', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(
        async () =>
          new Response(
            JSON.stringify({
              data: [
                row({ id: 'p-1', slug: 'trail-boot', price: '129.90', popularity: 0.4 }),
                row({ id: 'p-2', slug: 'draft-tent', price: null, popularity: 0.9 }),
              ],
            }),
            { headers: { 'content-type': 'application/json' } },
          ),
      ),
    );
    const listed = await listProducts();
    expect(listed.map((p) => p.slug)).toEqual(['trail-boot']);
    expect(await getProduct('draft-tent')).toBeUndefined();
    expect((await getProduct('trail-boot'))?.price).toBe(129.9);
  });
});
