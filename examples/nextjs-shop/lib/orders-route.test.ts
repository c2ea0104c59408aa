/**
 * POST /api/orders (app/api/orders/route.ts) against a stand-in Directus: prices come from
 * the catalog, a refusal names the line the shopper's cart got wrong, and a catalog that
 * cannot be read is a 503 with a message the checkout shows (an unhandled 500 showed none).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const CARD = '4242 4242 4242 4242';

/** A Directus whose catalog holds one product, p-1 at 12.50. */
function directusWithOneProduct() {
  vi.stubGlobal(
    'fetch',
    vi.fn(async () =>
      Response.json({ data: [{ id: 'p-1', slug: 'tent', title: 'Tent', price: '12.50', popularity: 1 }] }),
    ),
  );
}

async function pay(lines: unknown): Promise<Response> {
  // A fresh module each time: the catalog's in-memory cache must not carry across tests.
  const { POST } = await import('../app/api/orders/route.ts');
  return POST(
    new Request('http://shop.test/api/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ card: CARD, lines }),
    }),
  );
}

beforeEach(() => {
  vi.resetModules();
  vi.stubEnv('DIRECTUS_URL', 'http://directus.test');
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  vi.unstubAllEnvs();
});

describe('POST /api/orders', () => {
  it('prices the lines from the catalog', async () => {
    directusWithOneProduct();
    const res = await pay([{ productId: 'p-1', quantity: 2 }]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ total: 25 });
  });

  it('names the line whose product the catalog does not have', async () => {
    directusWithOneProduct();
    const res = await pay([
      { productId: 'p-1', quantity: 1 },
      { productId: 'p-1', quantity: 3 },
      { productId: 'gone', quantity: 1 },
    ]);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'lines[2]: unknown product' });
  });

  it.each([
    ['is down', async () => Promise.reject(new TypeError('fetch failed'))],
    ['answers 500', async () => new Response('oops', { status: 500 })],
    ['answers something other than JSON', async () => new Response('<html>', { status: 200 })],
  ])('answers 503 with Retry-After and a message when Directus %s', async (_, directus) => {
    vi.stubGlobal('fetch', vi.fn(directus));
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const res = await pay([{ productId: 'p-1', quantity: 1 }]);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.json()).toEqual({ error: 'the catalog is unavailable; try again' });
  });
});
