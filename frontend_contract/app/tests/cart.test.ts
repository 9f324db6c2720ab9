import { describe, expect, it } from 'vitest';
import { errorsByField, messageFor, parseQuantity, stepQuantity, unavailableLines } from '../src/lib/cart';
import { attemptKeys } from '../src/lib/checkoutAttempt';
import { readBrowse, writeBrowse } from '../src/lib/browseParams';
import { eventIdAfter, nextStatuses } from '../src/admin/events';

describe('cart quantities', () => {
  it('parses and clamps to 1..99', () => {
    expect(parseQuantity('3')).toBe(3);
    expect(parseQuantity('0')).toBe(1);
    expect(parseQuantity('250')).toBe(99);
    expect(parseQuantity('2.5')).toBeNull();
    expect(parseQuantity('')).toBeNull();
  });

  it('steps within the limits', () => {
    expect(stepQuantity(1, -1)).toBeNull();
    expect(stepQuantity(1, 1)).toBe(2);
    expect(stepQuantity(99, 1)).toBeNull();
  });

  it('finds the lines that block a checkout', () => {
    const lines = [
      { quantity: 1, available: true, product: { id: 'a' } },
      { quantity: 5, available: false, product: { id: 'b' } },
      { quantity: 1, available: true, product: null },
    ];
    expect(unavailableLines(lines).map((l) => l.product?.id ?? null)).toEqual(['b', null]);
  });
});

describe('userErrors by field', () => {
  it('puts each error next to the input it names', () => {
    const errors = errorsByField([
      { code: 'OUT_OF_STOCK', field: ['input', 'quantity'], message: 'Only 2 left.' },
      { code: 'INVALID', field: ['input', 'shippingAddress', 'postalCode'], message: 'Bad postal code.' },
      { code: 'CART_EMPTY', field: null, message: 'Your cart is empty.' },
    ]);
    expect(messageFor(errors, 'quantity')).toBe('Only 2 left.');
    expect(messageFor(errors, 'shippingAddress.postalCode')).toBe('Bad postal code.');
    expect(messageFor(errors, '')).toBe('Your cart is empty.');
    expect(messageFor(errors, 'productId')).toBeNull();
  });
});

describe('checkout attempts', () => {
  it('keeps one key per attempt and a new one for a changed request or after an order', () => {
    let n = 0;
    const keys = attemptKeys(() => `key-${++n}`);
    const request = { address: { city: 'Springfield' }, cart: 't1' };
    expect(keys.keyFor(request)).toBe('key-1');
    expect(keys.keyFor({ ...request })).toBe('key-1'); // a double click or a retry
    expect(keys.keyFor({ ...request, cart: 't2' })).toBe('key-2'); // the cart changed
    keys.finish();
    expect(keys.keyFor({ ...request, cart: 't2' })).toBe('key-3'); // the next order
  });
});

describe('browse URL state', () => {
  it('round-trips filters, sort and page through the URL', () => {
    const state = readBrowse(new URLSearchParams('q=lamp&category=home&minPrice=10&maxPrice=99.5&inStock=1&sort=PRICE&reverse=1&after=abc'));
    expect(state).toEqual({
      q: 'lamp',
      category: 'home',
      minPrice: '10.00',
      maxPrice: '99.50',
      inStock: true,
      options: {},
      sort: 'PRICE',
      reverse: true,
      after: 'abc',
    });
    expect(readBrowse(writeBrowse(state))).toEqual(state);
    expect(readBrowse(new URLSearchParams('sort=BOGUS&minPrice=x')).sort).toBe('');
    expect(writeBrowse(readBrowse(new URLSearchParams(''))).toString()).toBe('');
  });
});

describe('admin order events', () => {
  it('orders event ids numerically', () => {
    expect(eventIdAfter('10', '9')).toBe(true);
    expect(eventIdAfter('9', '10')).toBe(false);
    expect(eventIdAfter('10', '10')).toBe(false);
    expect(eventIdAfter('1', null)).toBe(true);
  });

  it('offers the transitions the orders subgraph allows', () => {
    expect(nextStatuses('PENDING_PAYMENT')).toEqual(['CANCELLED']);
    expect(nextStatuses('SHIPPED')).toEqual(['DELIVERED']);
    expect(nextStatuses('DELIVERED')).toEqual([]);
  });
});
