// The signed-in session: the access token (15 min), the rotating refresh token and who is signed
// in, kept in localStorage so a reload stays signed in. Refreshing is single-flight: a rotating
// refresh token may be spent only once (spending it twice signs the whole family out), so every
// caller that needs a fresh token while one refresh is running waits for that same refresh.

export interface SessionUser {
  id: string;
  name: string;
  email: string;
  role: 'CUSTOMER' | 'ADMIN';
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** Unix milliseconds when the access token expires. */
  expiresAt: number;
}

export interface SessionState {
  tokens: Tokens;
  user: SessionUser;
}

/** Spends a refresh token: the new tokens, or null when the refresh token is no longer good. */
export type RefreshFn = (refreshToken: string) => Promise<(Omit<Tokens, 'expiresAt'> & { expiresIn: number }) | null>;

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const KEY = 'shopgraph.session';
const EARLY_MS = 30_000; // refresh this long before expiry, so a request never carries a dying token

export class Session {
  private state: SessionState | null;
  private listeners = new Set<() => void>();
  private refreshing: Promise<boolean> | null = null;

  constructor(
    private readonly store: KeyValueStore,
    private readonly refreshFn: RefreshFn,
    private readonly now: () => number = Date.now,
  ) {
    this.state = Session.load(store);
  }

  private static load(store: KeyValueStore): SessionState | null {
    try {
      const raw = store.getItem(KEY);
      return raw ? (JSON.parse(raw) as SessionState) : null;
    } catch {
      return null;
    }
  }

  get current(): SessionState | null {
    return this.state;
  }

  get user(): SessionUser | null {
    return this.state?.user ?? null;
  }

  get accessToken(): string | null {
    return this.state?.tokens.accessToken ?? null;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  signIn(tokens: { accessToken: string; refreshToken: string; expiresIn: number }, user: SessionUser): void {
    this.set({
      tokens: { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: this.now() + tokens.expiresIn * 1000 },
      user,
    });
  }

  updateUser(user: Partial<SessionUser>): void {
    if (this.state) this.set({ ...this.state, user: { ...this.state.user, ...user } });
  }

  signOut(): void {
    this.set(null);
  }

  /** Whether the access token is (nearly) expired, so it should be refreshed before use. */
  get expiring(): boolean {
    return this.state !== null && this.state.tokens.expiresAt - EARLY_MS <= this.now();
  }

  /** An access token good for a while: refreshed first when it is about to expire. */
  async freshAccessToken(): Promise<string | null> {
    if (this.expiring) await this.refresh();
    return this.accessToken;
  }

  /**
   * Spend the refresh token for new tokens (one refresh at a time; concurrent callers share it).
   * True when the session has new tokens; false when it ended (the session is then signed out).
   */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    const state = this.state;
    if (!state) return Promise.resolve(false);
    this.refreshing = (async () => {
      try {
        const next = await this.refreshFn(state.tokens.refreshToken);
        if (this.state !== state) return this.state !== null; // signed out or in again meanwhile
        if (!next) {
          this.set(null);
          return false;
        }
        this.set({
          user: state.user,
          tokens: { accessToken: next.accessToken, refreshToken: next.refreshToken, expiresAt: this.now() + next.expiresIn * 1000 },
        });
        return true;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private set(state: SessionState | null): void {
    this.state = state;
    if (state) this.store.setItem(KEY, JSON.stringify(state));
    else this.store.removeItem(KEY);
    for (const listener of [...this.listeners]) listener();
  }
}
