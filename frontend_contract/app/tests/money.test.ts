import { describe, expect, it } from 'vitest';
import { formatMoney, fromMinorUnits, parsePriceInput, sumMoney, toMinorUnits } from '../src/lib/money';

describe('formatMoney', () => {
  it('formats decimal strings with the currency', () => {
    expect(formatMoney({ amount: '1234.50', currencyCode: 'USD' }, 'en-US')).toBe('$1,234.50');
    expect(formatMoney({ amount: '0', currencyCode: 'EUR' }, 'en-US')).toBe('€0.00');
    expect(formatMoney({ amount: '1234.5', currencyCode: 'EUR' }, 'de-DE')).toBe('1.234,50\u00a0€');
    expect(formatMoney({ amount: '1500', currencyCode: 'JPY' }, 'en-US')).toBe('¥1,500');
  });

  it('keeps every digit of amounts a float cannot hold', () => {
    // 2^53 + 1 dollars: as a float it would print ...992.00
    expect(formatMoney({ amount: '9007199254740993.01', currencyCode: 'USD' }, 'en-US')).toBe('$9,007,199,254,740,993.01');
  });

  it('refuses what is not a decimal string', () => {
    expect(() => formatMoney({ amount: '12,30', currencyCode: 'USD' })).toThrow(RangeError);
    expect(() => formatMoney({ amount: '1e3', currencyCode: 'USD' })).toThrow(RangeError);
  });
});

describe('minor units', () => {
  it('converts exactly both ways', () => {
    expect(toMinorUnits('12.3')).toBe(1230n);
    expect(toMinorUnits('-0.05')).toBe(-5n);
    expect(toMinorUnits('7')).toBe(700n);
    expect(toMinorUnits('1.50', 2)).toBe(150n);
    expect(fromMinorUnits(1230n)).toBe('12.30');
    expect(fromMinorUnits(-5n)).toBe('-0.05');
    expect(() => toMinorUnits('0.001')).toThrow(RangeError);
  });

  it('adds without float error', () => {
    const usd = (amount: string) => ({ amount, currencyCode: 'USD' });
    expect(sumMoney([usd('0.10'), usd('0.20')], 'USD')).toEqual(usd('0.30'));
    expect(() => sumMoney([usd('1'), { amount: '1', currencyCode: 'EUR' }], 'USD')).toThrow(RangeError);
  });

  it('parses typed prices', () => {
    expect(parsePriceInput(' 12.5 ')).toBe('12.50');
    expect(parsePriceInput('12')).toBe('12.00');
    expect(parsePriceInput('12.345')).toBeNull();
    expect(parsePriceInput('-1')).toBeNull();
    expect(parsePriceInput('abc')).toBeNull();
  });
});
