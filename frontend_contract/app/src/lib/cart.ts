// Cart rules the page applies before and after asking the graph: quantities, and which
// userError belongs next to which control.

export const MIN_QUANTITY = 1;
export const MAX_QUANTITY = 99; // the cart subgraph's limit (UpdateCartItemInput: 1..99)

export interface UserErrorLike {
  code: string;
  field?: readonly string[] | null;
  message: string;
}

/** A quantity typed into a field, clamped to what the cart accepts; null when it is not a number. */
export function parseQuantity(text: string): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  return Math.min(MAX_QUANTITY, Math.max(MIN_QUANTITY, Number.parseInt(text, 10)));
}

/**
 * Where a mutation's userErrors go: keyed by the input field they name ("quantity",
 * "productId"; the leading "input" is dropped), "" for errors about the whole form.
 */
export function errorsByField(errors: readonly UserErrorLike[]): Map<string, UserErrorLike[]> {
  const out = new Map<string, UserErrorLike[]>();
  for (const error of errors) {
    const path = [...(error.field ?? [])];
    if (path[0] === 'input') path.shift();
    const key = path.join('.');
    out.set(key, [...(out.get(key) ?? []), error]);
  }
  return out;
}

/** The messages for one field (or the form, with ""), joined for an inline error. */
export function messageFor(errors: Map<string, UserErrorLike[]>, field: string): string | null {
  const list = errors.get(field);
  return list && list.length > 0 ? list.map((e) => e.message).join(' ') : null;
}

export interface CartLineLike {
  quantity: number;
  available: boolean;
  product?: { id: string } | null;
}

/** What stops a checkout: lines the catalog cannot sell now (archived, not enough stock). */
export function unavailableLines<T extends CartLineLike>(items: readonly T[]): T[] {
  return items.filter((item) => !item.available || !item.product);
}

/** The quantity to show after the user presses + or - (null: nothing to send). */
export function stepQuantity(current: number, step: 1 | -1): number | null {
  const next = current + step;
  return next < MIN_QUANTITY || next > MAX_QUANTITY ? null : next;
}
