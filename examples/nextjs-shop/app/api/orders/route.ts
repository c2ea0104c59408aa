/**
 * POST /api/orders: the fake payment. Prices come from the catalog (never from the
 * browser); any 16-digit card is accepted except the decline test card. It stores
 * nothing: the order id it answers is made up for the confirmation (a demo shop has no
 * order system; Directus's `orders` collection is for an order system to write to).
 * What a request must carry: lib/order-request.ts. With Directus (the catalog) down it
 * cannot price the lines: a 503 the checkout shows, not an unhandled 500.
 */
import { NextResponse } from 'next/server';
import { listProducts, readCatalog } from '@/lib/catalog';
import { parseOrderRequest } from '@/lib/order-request';

/** Past the catalog cache's 15 s, so a retry reads Directus again. */
const CATALOG_RETRY_AFTER_SECONDS = 30;

export async function POST(request: Request): Promise<Response> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return NextResponse.json({ error: 'expected a JSON body' }, { status: 400 });
  }
  const order = parseOrderRequest(body);
  if (!order.ok) return NextResponse.json({ error: order.message }, { status: order.status });
  const catalog = await readCatalog(listProducts);
  if (!catalog.ok) {
    console.error(`POST /api/orders: ${catalog.message}`);
    return NextResponse.json(
      { error: 'the catalog is unavailable; try again' },
      { status: 503, headers: { 'retry-after': String(CATALOG_RETRY_AFTER_SECONDS) } },
    );
  }
  const products = new Map(catalog.value.map((p) => [p.id, p]));
  let total = 0;
  for (const [index, line] of order.lines.entries()) {
    const product = products.get(line.productId);
    if (product === undefined) {
      return NextResponse.json({ error: `lines[${index}]: unknown product` }, { status: 400 });
    }
    total += product.price * line.quantity;
  }
  const orderId = `ord_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return NextResponse.json({ orderId, total: Math.round(total * 100) / 100 });
}
