// The orders this browser placed as a guest: each order's lookup token (guestCheckout), kept in
// localStorage so the order can be opened again, and claimed by the account at sign-in or sign-up
// (claimGuestOrders: the server gives an order only to the account with the order's e-mail address).

import type { StorageLike } from './guestCart';

export const ORDERS_KEY = 'shopgraph.guestOrders';
const MAX_KEPT = 20; // as many as one claim takes

export interface GuestOrderRef {
  token: string;
  number: string;
  email: string;
}

export class GuestOrderStore {
  constructor(private readonly storage: StorageLike | null) {}

  all(): GuestOrderRef[] {
    try {
      const parsed: unknown = JSON.parse(this.storage?.getItem(ORDERS_KEY) ?? '[]');
      return Array.isArray(parsed) ? parsed.filter((o): o is GuestOrderRef => typeof o?.token === 'string' && typeof o?.number === 'string') : [];
    } catch {
      return [];
    }
  }

  private save(orders: GuestOrderRef[]): void {
    try {
      if (orders.length) this.storage?.setItem(ORDERS_KEY, JSON.stringify(orders.slice(-MAX_KEPT)));
      else this.storage?.removeItem(ORDERS_KEY);
    } catch {
      /* storage refused: the order is still in the confirmation's link */
    }
  }

  add(order: GuestOrderRef): void {
    this.save([...this.all().filter((o) => o.token !== order.token), order]);
  }

  /** Forget these tokens (claimed, or no good any more). */
  drop(tokens: readonly string[]): void {
    const gone = new Set(tokens);
    this.save(this.all().filter((o) => !gone.has(o.token)));
  }

  /**
   * After sign-in: claim every kept order. Claimed, forged and expired ones are forgotten; one placed with
   * another address stays (another account may claim it later). Returns the numbers claimed.
   */
  async claimAfterSignIn(
    claim: (
      tokens: string[],
    ) => Promise<{ orders: readonly { number: string }[]; userErrors: readonly { code: string; field?: readonly string[] | null }[] } | null>,
  ): Promise<string[]> {
    const kept = this.all();
    if (kept.length === 0) return [];
    const tokens = kept.map((o) => o.token);
    const result = await claim(tokens).catch(() => null);
    if (!result) return [];
    const claimed = new Set(result.orders.map((o) => o.number));
    const invalid = new Set(result.userErrors.filter((e) => e.code === 'INVALID_TOKEN' || e.code === 'TOKEN_EXPIRED').map((e) => Number(e.field?.[2] ?? -1)));
    this.drop(kept.filter((o, i) => claimed.has(o.number) || invalid.has(i)).map((o) => o.token));
    return [...claimed];
  }
}

function browserStorage(): StorageLike | null {
  try {
    return typeof window !== 'undefined' ? window.localStorage : null;
  } catch {
    return null;
  }
}

export const guestOrders = new GuestOrderStore(browserStorage());
