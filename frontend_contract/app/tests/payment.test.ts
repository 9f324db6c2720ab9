import { describe, expect, it } from 'vitest';
import { payUrl, paymentUnsettled, settleDelay } from '../src/pages/Payment';

describe('payUrl', () => {
  it('keeps the provider page and its secret, and sends the shopper back to this order', () => {
    const url = new URL(payUrl('http://127.0.0.1:4005/pay/test/tpi_1?secret=s3cr%2Bt', 'SG-100042', 'http://127.0.0.1:4000'));
    expect(url.origin + url.pathname).toBe('http://127.0.0.1:4005/pay/test/tpi_1');
    expect(url.searchParams.get('secret')).toBe('s3cr+t');
    expect(url.searchParams.get('return_to')).toBe('http://127.0.0.1:4000/orders/SG-100042');
  });

  it('replaces a return address already there', () => {
    const url = new URL(payUrl('http://pay.example/p?secret=a&return_to=https%3A%2F%2Fevil.example', 'SG-1', 'https://shop.example'));
    expect(url.searchParams.getAll('return_to')).toEqual(['https://shop.example/orders/SG-1']);
  });
});

describe('paymentUnsettled', () => {
  it('waits for the payment a cancelled order still shows open (its void comes after the order event)', () => {
    expect(paymentUnsettled('CANCELLED', 'PENDING', false)).toBe(true);
    expect(paymentUnsettled('CANCELLED', 'AUTHORISED', false)).toBe(true);
    expect(paymentUnsettled('CANCELLED', 'CANCELLED', false)).toBe(false);
    expect(paymentUnsettled('CANCELLED', 'FAILED', false)).toBe(false);
  });

  it('waits for the webhook when the shopper is back from the provider, not before', () => {
    expect(paymentUnsettled('PENDING_PAYMENT', 'PENDING', true)).toBe(true);
    expect(paymentUnsettled('PENDING_PAYMENT', 'PENDING', false)).toBe(false);
    expect(paymentUnsettled('PENDING_PAYMENT', null, false)).toBe(true); // payments has not made it yet
  });

  it('is settled once a paid order shows its payment authorised or captured', () => {
    expect(paymentUnsettled('PAID', 'PENDING', false)).toBe(true);
    expect(paymentUnsettled('PAID', 'AUTHORISED', false)).toBe(false);
    expect(paymentUnsettled('PAID', 'CAPTURED', false)).toBe(false);
  });

  it('backs off from half a second to eight', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(settleDelay)).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });
});
