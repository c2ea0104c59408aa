/**
 * The shopping cart, kept in the browser (strictly necessary storage: the shop does not
 * work without it). Lines carry what the cart and the order events need.
 */
import { MAX_LINE_QUANTITY } from './order-request.ts';

export interface CartLine {
  productId: string;
  slug: string;
  title: string;
  category: string;
  tags: string[];
  price: number;
  currency: string;
  quantity: number;
}

const KEY = 'shop-cart';

export function readCart(): CartLine[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    return Array.isArray(parsed) ? (parsed as CartLine[]) : [];
  } catch {
    return [];
  }
}

export function writeCart(lines: CartLine[]): void {
  localStorage.setItem(KEY, JSON.stringify(lines));
  window.dispatchEvent(new Event('shop-cart'));
}

/**
 * Adds one of the product; false when its line already holds MAX_LINE_QUANTITY, the most an
 * order takes (app/api/orders refuses more), so the cart never holds what checkout refuses.
 */
export function addLine(line: Omit<CartLine, 'quantity'>): boolean {
  const lines = readCart();
  const existing = lines.find((l) => l.productId === line.productId);
  if (existing !== undefined && existing.quantity >= MAX_LINE_QUANTITY) return false;
  if (existing) existing.quantity += 1;
  else lines.push({ ...line, quantity: 1 });
  writeCart(lines);
  return true;
}

export function cartTotal(lines: CartLine[]): number {
  return Math.round(lines.reduce((sum, l) => sum + l.price * l.quantity, 0) * 100) / 100;
}

/** A cart line as Attune's events describe a product. */
export function productRef(l: CartLine) {
  return {
    productId: l.productId,
    sku: l.slug,
    name: l.title,
    category: l.category,
    tags: l.tags,
    price: l.price,
    currency: l.currency,
    quantity: l.quantity,
  };
}
