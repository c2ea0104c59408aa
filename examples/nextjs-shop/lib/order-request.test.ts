/**
 * The fake payment's request: whatever the browser posts, a bad body is a 400 that says
 * what to send (a 500 told the shopper nothing and looked like the shop was down).
 */
import { describe, expect, it } from 'vitest';
import { parseOrderRequest } from './order-request.ts';

const CARD = '4242 4242 4242 4242';

describe('the order request body', () => {
  it('reads the card and the lines', () => {
    expect(parseOrderRequest({ card: CARD, lines: [{ productId: 'p-1', quantity: 2 }] })).toEqual({
      ok: true,
      card: '4242424242424242',
      lines: [{ productId: 'p-1', quantity: 2 }],
    });
  });

  it.each([
    ['null', null, /not a JSON object.*"card"/],
    ['an array', [{ card: CARD }], /not a JSON object/],
    ['a string', 'pay', /not a JSON object/],
    ['a number', 42, /not a JSON object/],
  ])('a body that is %s is a 400 saying what to send', (_, body, message) => {
    const parsed = parseOrderRequest(body);
    expect(parsed).toMatchObject({ ok: false, status: 400 });
    expect(parsed.ok === false && parsed.message).toMatch(message);
  });

  it.each([
    ['null', null],
    ['a string', 'p-1'],
    ['an array', ['p-1', 1]],
  ])('a line that is %s is a 400 naming the line', (_, line) => {
    const parsed = parseOrderRequest({ card: CARD, lines: [{ productId: 'p-1', quantity: 1 }, line] });
    expect(parsed).toMatchObject({ ok: false, status: 400 });
    expect(parsed.ok === false && parsed.message).toMatch(/^lines\[1\]: expected an object/);
  });

  it('keeps the existing answers: bad card, declined card, no lines', () => {
    expect(parseOrderRequest({ card: '42', lines: [] })).toMatchObject({ status: 400, message: /16 digits/ });
    expect(parseOrderRequest({ card: '4000 0000 0000 0002', lines: [] })).toMatchObject({ status: 402 });
    expect(parseOrderRequest({ card: CARD, lines: [] })).toMatchObject({ status: 400, message: /1 to 100/ });
  });

  it.each([
    [{ productId: 'p-2', quantity: 100 }, 'lines[2].quantity: at most 99'],
    [{ productId: 'p-2', quantity: 1.5 }, 'lines[2].quantity: expected a whole number from 1 to 99'],
    [{ productId: 'p-2', quantity: 0 }, 'lines[2].quantity: expected a whole number from 1 to 99'],
    [{ productId: 'p-2' }, 'lines[2].quantity: expected a whole number from 1 to 99'],
    [{ productId: 7, quantity: 1 }, 'lines[2].productId: expected a product id'],
    [{ quantity: 1 }, 'lines[2].productId: expected a product id'],
  ])('a bad line (%j) is a 400 naming the line and the field', (line, message) => {
    const ok = { productId: 'p-1', quantity: 99 };
    expect(parseOrderRequest({ card: CARD, lines: [ok, ok, line] })).toEqual({
      ok: false,
      status: 400,
      message,
    });
  });
});
