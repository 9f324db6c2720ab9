// Money arrives as { amount: "12.30", currencyCode: "USD" }: a decimal string, never a float.
// Intl.NumberFormat formats the string itself (ECMA-402 formats decimal strings exactly), so no
// amount ever goes through binary floating point on its way to the screen.

export interface MoneyLike {
  amount: string;
  currencyCode: string;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;
const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currencyCode: string, locale: string): Intl.NumberFormat {
  const key = `${locale}|${currencyCode}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, { style: 'currency', currency: currencyCode });
    formatters.set(key, f);
  }
  return f;
}

/**
 * The shop's locale (its pages are in English): the server renders prices in it and the browser
 * hydrates them, so a shopper's own browser locale cannot make the two differ (a hydration mismatch).
 */
export const SHOP_LOCALE = 'en-US';

/** "1234.50" USD -> "$1,234.50" (in the given locale, default the shop's). */
export function formatMoney(money: MoneyLike, locale: string = SHOP_LOCALE): string {
  if (!DECIMAL.test(money.amount)) throw new RangeError(`not a decimal amount: ${JSON.stringify(money.amount)}`);
  // The string overload of format() (Intl.NumberFormat v3) keeps every digit of the decimal.
  return formatter(money.currencyCode, locale).format(money.amount as unknown as number);
}

/** A decimal string as integer minor units (cents), exactly: "12.3" -> 1230n for 2 digits. */
export function toMinorUnits(amount: string, digits = 2): bigint {
  if (!DECIMAL.test(amount)) throw new RangeError(`not a decimal amount: ${JSON.stringify(amount)}`);
  const negative = amount.startsWith('-');
  const [whole, fraction = ''] = (negative ? amount.slice(1) : amount).split('.');
  if (fraction.length > digits && /[1-9]/.test(fraction.slice(digits))) {
    throw new RangeError(`${amount} has more than ${digits} decimal places`);
  }
  const units = BigInt(whole) * 10n ** BigInt(digits) + BigInt((fraction.slice(0, digits) || '0').padEnd(digits, '0'));
  return negative ? -units : units;
}

/** Integer minor units back to a decimal string: 1230n -> "12.30". */
export function fromMinorUnits(units: bigint, digits = 2): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const scale = 10n ** BigInt(digits);
  const whole = (abs / scale).toString();
  const fraction = digits > 0 ? '.' + (abs % scale).toString().padStart(digits, '0') : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Exact decimal sum of amounts in one currency ("0.10" + "0.20" is "0.30", not 0.30000000000000004). */
export function sumMoney(items: readonly MoneyLike[], currencyCode: string): MoneyLike {
  let total = 0n;
  for (const item of items) {
    if (item.currencyCode !== currencyCode) throw new RangeError(`cannot add ${item.currencyCode} to ${currencyCode}`);
    total += toMinorUnits(item.amount);
  }
  return { amount: fromMinorUnits(total), currencyCode };
}

/** A user-typed price ("12", "12.5", " 12.50 ") as the API's Decimal string, or null when invalid. */
export function parsePriceInput(text: string): string | null {
  const t = text.trim();
  if (!/^\d+(\.\d{1,2})?$/.test(t)) return null;
  return fromMinorUnits(toMinorUnits(t));
}
