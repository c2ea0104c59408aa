/**
 * POST /api/orders: the fake payment. Prices come from the catalog (never from the
 * browser); any 16-digit card is accepted except the decline test card. It stores
 * nothing: the order id it answers is made up for the confirmation (a demo shop has no
 * order system; Directus's `orders` collection is for an order system to write to).
 */
import { NextResponse } from 'next/server';
import { listProducts } from '@/lib/catalog';

const DECLINED_CARD = '4000000000000002';

export async function POST(request: Request): Promise<Response> {
  let body: { card?: unknown; lines?: unknown };
  try {
    body = (await request.json()) as typeof body;
  } catch {
    return NextResponse.json({ error: 'expected a JSON body' }, { status: 400 });
  }
  const card = typeof body.card === 'string' ? body.card.replace(/\s+/g, '') : '';
  if (!/^\d{16}$/.test(card))
    return NextResponse.json({ error: 'card number: expected 16 digits' }, { status: 400 });
  if (card === DECLINED_CARD)
    return NextResponse.json({ error: 'card declined (test card)' }, { status: 402 });
  if (!Array.isArray(body.lines) || body.lines.length === 0 || body.lines.length > 100) {
    return NextResponse.json({ error: 'lines: expected 1 to 100 cart lines' }, { status: 400 });
  }
  const products = new Map((await listProducts()).map((p) => [p.id, p]));
  let total = 0;
  for (const line of body.lines as unknown[]) {
    const l = line as { productId?: unknown; quantity?: unknown };
    const product = typeof l.productId === 'string' ? products.get(l.productId) : undefined;
    const qty = typeof l.quantity === 'number' && Number.isInteger(l.quantity) ? l.quantity : 0;
    if (product === undefined || qty < 1 || qty > 99) {
      return NextResponse.json({ error: 'lines: unknown product or bad quantity' }, { status: 400 });
    }
    total += product.price * qty;
  }
  const orderId = `ord_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return NextResponse.json({ orderId, total: Math.round(total * 100) / 100 });
}
