// A signed-out shopper's cart: the cart token (createGuestCart) kept in localStorage, sent as
// `cartToken` with each cart mutation, merged into the account's cart at sign-in or sign-up and
// then forgotten. The merge's notices (quantity capped, unavailable) are kept to be shown once.

export const TOKEN_KEY = 'shopgraph.cartToken';

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface MergeNotice {
  code: string;
  message: string;
}

export interface MergeResult {
  notices: readonly MergeNotice[];
  userErrors: readonly { code: string; message: string }[];
}

/** The token's store: one per tab, shared by every component (subscribe for changes). */
export class GuestCartStore {
  private listeners = new Set<() => void>();
  private creating: Promise<string | null> | null = null;
  private flash: MergeNotice[] = [];
  /** A merge into the account's cart is running (mergeAfterSignIn). */
  merging = false;

  constructor(private readonly storage: StorageLike | null) {}

  get token(): string | null {
    try {
      return this.storage?.getItem(TOKEN_KEY) ?? null;
    } catch {
      return null; // storage refused (private mode): no guest cart
    }
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(token: string | null): void {
    try {
      if (token) this.storage?.setItem(TOKEN_KEY, token);
      else this.storage?.removeItem(TOKEN_KEY);
    } catch {
      /* storage refused: the cart lasts as long as this page */
    }
    for (const listener of this.listeners) listener();
  }

  /** Drop the token (merged, or the server no longer knows it). */
  forget(): void {
    this.set(null);
  }

  /**
   * The guest cart's token, creating the cart once if there is none: concurrent callers (a double
   * click on "Add to cart") share one createGuestCart. Null if the cart could not be created.
   */
  async ensure(create: () => Promise<string | null>): Promise<string | null> {
    const existing = this.token;
    if (existing) return existing;
    if (!this.creating) {
      this.creating = create()
        .then((token) => {
          if (token) this.set(token);
          return token;
        })
        .catch(() => null)
        .finally(() => {
          this.creating = null;
        });
    }
    return this.creating;
  }

  /**
   * After sign-in: merge the guest cart into the account's cart. The token is forgotten when the
   * merge is done or refused for good (an expired or already merged token); kept when the request
   * itself failed, so the next sign-in tries again. The notices are kept for takeNotices().
   */
  async mergeAfterSignIn(merge: (token: string) => Promise<MergeResult | null>): Promise<MergeNotice[]> {
    const token = this.token;
    if (!token) return [];
    // Until the merge is done the account's cart is not read (useCart): a read sent meanwhile could
    // answer after the merged one and leave the count from before the merge on the page.
    this.merging = true;
    for (const listener of this.listeners) listener();
    const result = await merge(token)
      .catch(() => null)
      .finally(() => {
        this.merging = false;
        for (const listener of this.listeners) listener();
      });
    if (!result) return [];
    this.forget();
    const notices = [...result.notices, ...result.userErrors].filter((n) => n.code !== 'ALREADY_MERGED');
    this.flash = notices;
    for (const listener of this.listeners) listener();
    return notices;
  }

  /** The last merge's notices, once: a second call returns none. */
  takeNotices(): MergeNotice[] {
    const notices = this.flash;
    this.flash = [];
    return notices;
  }
}

/** The `cartToken` a cart mutation carries: the guest's token when signed out, none when signed in. */
export function cartTokenFor(signedIn: boolean, token: string | null): { cartToken?: string } {
  return !signedIn && token ? { cartToken: token } : {};
}

/** A userError that means the guest token is no good any more (start a new cart). */
export function isDeadToken(errors: readonly { code: string }[]): boolean {
  return errors.some((e) => e.code === 'INVALID_TOKEN');
}

function browserStorage(): StorageLike | null {
  try {
    return typeof window !== 'undefined' ? window.localStorage : null;
  } catch {
    return null;
  }
}

export const guestCart = new GuestCartStore(browserStorage());
