// The signed-in session. No script can read a token that outlives the page: the access token
// (15 min) lives in this object only, and the rotating refresh token in an HttpOnly cookie that the
// graph sets at sign-in (router/session_cookie.py). A reload restores the session by spending the
// cookie (RefreshSession); only a hint that there may be one ("shopgraph.signedIn", not a token) is
// kept in localStorage, so anonymous visitors do not ask.
//
// Refreshing is single-flight: a rotating refresh token may be spent only once (spending it twice
// signs the whole family out), so every caller that needs a fresh token while one refresh runs
// waits for that same refresh, and tabs of one browser (which share the cookie) take turns under
// a Web Lock.

export interface SessionUser {
  id: string;
  name: string;
  email: string;
  role: 'CUSTOMER' | 'ADMIN';
}

export interface Tokens {
  accessToken: string;
  /** Unix milliseconds when the access token expires. */
  expiresAt: number;
}

export interface SessionState {
  tokens: Tokens;
  user: SessionUser;
}

export interface Refreshed {
  accessToken: string;
  expiresIn: number;
  user: SessionUser;
}

/** Spends the session cookie: a new access token and who it is for, or null when there is no good session. */
export type RefreshFn = () => Promise<Refreshed | null>;

/** Runs `task` while no other tab of this browser refreshes (navigator.locks where there is one). */
export type Exclusive = <T>(task: () => Promise<T>) => Promise<T>;

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const HINT_KEY = 'shopgraph.signedIn';
const EARLY_MS = 30_000; // refresh this long before expiry, so a request never carries a dying token

export const inTurn: Exclusive = (task) => {
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  return locks ? (locks.request('shopgraph.refresh', task) as Promise<Awaited<ReturnType<typeof task>>>) : task();
};

export class Session {
  private state: SessionState | null = null;
  /** True until the session a reload left behind is restored (or found gone). */
  private restoring: boolean;
  private listeners = new Set<() => void>();
  private refreshing: Promise<boolean> | null = null;
  private restoration: Promise<void> | null = null;

  constructor(
    private readonly hints: KeyValueStore,
    private readonly refreshFn: RefreshFn,
    private readonly now: () => number = Date.now,
    private readonly exclusive: Exclusive = inTurn,
  ) {
    this.restoring = hints.getItem(HINT_KEY) !== null;
  }

  get current(): SessionState | null {
    return this.state;
  }

  get user(): SessionUser | null {
    return this.state?.user ?? null;
  }

  /** Whether the session of an earlier page is still being restored (who is signed in is not known yet). */
  get pending(): boolean {
    return this.restoring;
  }

  get accessToken(): string | null {
    return this.state?.tokens.accessToken ?? null;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** After a reload (or a sign-in in another tab): take up the session the cookie holds, if any. */
  restore(): Promise<void> {
    this.restoration ??= (async () => {
      if (this.state === null && this.hints.getItem(HINT_KEY) !== null) {
        this.restoring = true;
        this.emit();
        await this.refreshWith(null).catch(() => false); // offline: stays signed out until the next load
      }
      if (this.restoring) {
        this.restoring = false;
        this.emit();
      }
    })().finally(() => {
      this.restoration = null;
    });
    return this.restoration;
  }

  /** Resolves once who is signed in is known (a restore running now has ended). */
  settled(): Promise<void> {
    return this.restoration ?? Promise.resolve();
  }

  signIn(tokens: { accessToken: string; expiresIn: number }, user: SessionUser): void {
    this.restoring = false;
    this.set({ tokens: { accessToken: tokens.accessToken, expiresAt: this.now() + tokens.expiresIn * 1000 }, user });
  }

  updateUser(user: Partial<SessionUser>): void {
    if (this.state) this.set({ ...this.state, user: { ...this.state.user, ...user } });
  }

  signOut(): void {
    this.set(null);
  }

  /** Another tab signed out: forget the access token here too (the cookie is already gone). */
  forget(): void {
    if (this.state !== null) this.set(null, false);
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
   * Spend the cookie for a new access token (one refresh at a time; concurrent callers share it).
   * True when the session has a new token; false when it ended (the session is then signed out).
   */
  refresh(): Promise<boolean> {
    const state = this.state;
    if (!state) return Promise.resolve(false);
    return this.refreshWith(state);
  }

  private refreshWith(state: SessionState | null): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const next = await this.exclusive(() => this.refreshFn());
        if (this.state !== state) return this.state !== null; // signed out or in again meanwhile
        if (!next) {
          this.set(null);
          return false;
        }
        this.restoring = false;
        this.set({ user: next.user, tokens: { accessToken: next.accessToken, expiresAt: this.now() + next.expiresIn * 1000 } });
        return true;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private set(state: SessionState | null, hint = true): void {
    this.state = state;
    if (hint) {
      if (state) this.hints.setItem(HINT_KEY, '1');
      else this.hints.removeItem(HINT_KEY);
    }
    this.emit();
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
