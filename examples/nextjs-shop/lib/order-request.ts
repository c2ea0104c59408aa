/**
 * The fake payment's request as the shop's server reads it (app/api/orders): a card number
 * and the cart's lines. Anything else, down to a `null` body or a line that is not an
 * object, is a 400 that says what to send, never a 500: the body comes from the browser.
 */

/** The test card the fake payment declines. */
export const DECLINED_CARD = '4000000000000002';

/** The most of one product an order takes; the cart (lib/cart.ts) stops adding there too. */
export const MAX_LINE_QUANTITY = 99;

const EXPECTED = 'expected a JSON body {"card": "<16 digits>", "lines": [{"productId": "…", "quantity": 1}]}';

/** A cart line as the browser names it; the price comes from the catalog, never from here. */
export interface OrderLine {
  productId: string;
  quantity: number;
}

export type OrderRequest =
  | { ok: true; card: string; lines: OrderLine[] }
  | { ok: false; status: 400 | 402; message: string };

/** A plain JSON object: `null`, arrays and other values have no fields to read. */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The order request's parsed JSON body, checked: a readable message for anything else. */
export function parseOrderRequest(body: unknown): OrderRequest {
  if (!isObject(body))
    return { ok: false, status: 400, message: `the body is not a JSON object; ${EXPECTED}` };
  const card = typeof body.card === 'string' ? body.card.replace(/\s+/g, '') : '';
  if (!/^\d{16}$/.test(card)) return { ok: false, status: 400, message: 'card number: expected 16 digits' };
  if (card === DECLINED_CARD) return { ok: false, status: 402, message: 'card declined (test card)' };
  const { lines } = body;
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > 100)
    return { ok: false, status: 400, message: 'lines: expected 1 to 100 cart lines' };
  const parsed: OrderLine[] = [];
  for (const [index, line] of (lines as unknown[]).entries()) {
    if (!isObject(line))
      return {
        ok: false,
        status: 400,
        message: `lines[${index}]: expected an object {"productId": "…", "quantity": 1}`,
      };
    if (typeof line.productId !== 'string' || line.productId === '')
      return { ok: false, status: 400, message: `lines[${index}].productId: expected a product id` };
    const { quantity } = line;
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1)
      return {
        ok: false,
        status: 400,
        message: `lines[${index}].quantity: expected a whole number from 1 to ${MAX_LINE_QUANTITY}`,
      };
    if (quantity > MAX_LINE_QUANTITY)
      return { ok: false, status: 400, message: `lines[${index}].quantity: at most ${MAX_LINE_QUANTITY}` };
    parsed.push({ productId: line.productId, quantity });
  }
  return { ok: true, card, lines: parsed };
}
