// Words for what the cart's pricing returns: delivery estimates and why a code does not apply.

const REFUSALS: Record<string, string> = {
  NOT_FOUND: 'There is no such code.',
  DISABLED: 'This code is no longer active.',
  NOT_STARTED: 'This code is not valid yet.',
  EXPIRED: 'This code has expired.',
  MINIMUM_NOT_MET: 'Your cart is below this code’s minimum spend.',
  USAGE_LIMIT_REACHED: 'This code has been used up.',
  CUSTOMER_LIMIT_REACHED: 'You have already used this code as often as it allows.',
};

/** Why a code does not apply, in words (an unknown reason still says something). */
export function refusalText(reason: string | null | undefined): string {
  if (!reason) return 'This code does not apply to your cart.';
  return REFUSALS[reason] ?? 'This code does not apply to your cart.';
}

/** "1 business day", "3–5 business days". */
export function deliveryEstimate(minDays: number, maxDays: number): string {
  const unit = (n: number) => (n === 1 ? 'business day' : 'business days');
  if (minDays === maxDays) return `${minDays} ${unit(minDays)}`;
  return `${minDays}–${maxDays} ${unit(maxDays)}`;
}

/** A country as typed: two letters, upper-cased; null when it is not two letters. */
export function cleanCountry(text: string): string | null {
  const value = text.trim().toUpperCase();
  return /^[A-Z]{2}$/.test(value) ? value : null;
}
