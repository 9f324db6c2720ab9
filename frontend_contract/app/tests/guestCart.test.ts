import { describe, expect, it } from 'vitest';
import { cartTokenFor, GuestCartStore, isDeadToken, TOKEN_KEY, type StorageLike } from '../src/lib/guestCart';
import { cleanCountry, deliveryEstimate, refusalText } from '../src/lib/pricing';

class MemoryStorage implements StorageLike {
  values = new Map<string, string>();
  getItem(key: string) {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.values.set(key, value);
  }
  removeItem(key: string) {
    this.values.delete(key);
  }
}

class RefusingStorage implements StorageLike {
  getItem(): string | null {
    throw new Error('SecurityError');
  }
  setItem(): void {
    throw new Error('QuotaExceededError');
  }
  removeItem(): void {
    throw new Error('SecurityError');
  }
}

describe('guest cart token', () => {
  it('creates the cart once for concurrent adds and keeps the token', async () => {
    const storage = new MemoryStorage();
    const store = new GuestCartStore(storage);
    let created = 0;
    const create = async () => {
      created += 1;
      await new Promise((r) => setTimeout(r, 5));
      return `token-${created}`;
    };
    const tokens = await Promise.all([store.ensure(create), store.ensure(create), store.ensure(create)]);
    expect(tokens).toEqual(['token-1', 'token-1', 'token-1']);
    expect(created).toBe(1);
    expect(storage.getItem(TOKEN_KEY)).toBe('token-1');
    // A new store on the same storage (a reload) finds it without creating another.
    expect(await new GuestCartStore(storage).ensure(create)).toBe('token-1');
    expect(created).toBe(1);
  });

  it('stores nothing when the cart cannot be created, and tries again next time', async () => {
    const store = new GuestCartStore(new MemoryStorage());
    expect(await store.ensure(async () => null)).toBeNull();
    expect(await store.ensure(() => Promise.reject(new Error('network')))).toBeNull();
    expect(store.token).toBeNull();
    expect(await store.ensure(async () => 't')).toBe('t');
  });

  it('survives a storage that refuses (private mode)', async () => {
    const store = new GuestCartStore(new RefusingStorage());
    expect(store.token).toBeNull();
    expect(await store.ensure(async () => 't')).toBe('t');
    expect(() => store.forget()).not.toThrow();
  });

  it('sends the token only while signed out', () => {
    expect(cartTokenFor(false, 'abc')).toEqual({ cartToken: 'abc' });
    expect(cartTokenFor(true, 'abc')).toEqual({});
    expect(cartTokenFor(false, null)).toEqual({});
  });

  it('recognises a token the server no longer accepts', () => {
    expect(isDeadToken([{ code: 'INVALID_TOKEN' }])).toBe(true);
    expect(isDeadToken([{ code: 'OUT_OF_STOCK' }])).toBe(false);
  });
});

describe('merge after sign-in', () => {
  it('says a merge is running from its start to its end, failed or not (the account cart waits)', async () => {
    const storage = new MemoryStorage();
    const store = new GuestCartStore(storage);
    storage.setItem(TOKEN_KEY, 'guest');
    const seen: boolean[] = [];
    const merging = store.mergeAfterSignIn(async () => {
      seen.push(store.merging);
      throw new Error('network');
    });
    expect(store.merging).toBe(true); // at once: before the first render of the signed-in page
    await merging;
    expect(seen).toEqual([true]);
    expect(store.merging).toBe(false);
    expect(store.token).toBe('guest'); // kept for the next sign-in
  });

  it('merges once, forgets the token and hands the notices out once', async () => {
    const storage = new MemoryStorage();
    const store = new GuestCartStore(storage);
    storage.setItem(TOKEN_KEY, 'guest');
    let changes = 0;
    store.subscribe(() => (changes += 1));
    const merged: string[] = [];
    const notices = await store.mergeAfterSignIn(async (token) => {
      merged.push(token);
      return {
        notices: [{ code: 'QUANTITY_CAPPED', message: 'Only 2 left: you have 2.' }],
        userErrors: [],
      };
    });
    expect(merged).toEqual(['guest']);
    expect(notices.map((n) => n.code)).toEqual(['QUANTITY_CAPPED']);
    expect(store.token).toBeNull();
    expect(changes).toBeGreaterThan(0);
    expect(store.takeNotices().map((n) => n.code)).toEqual(['QUANTITY_CAPPED']);
    expect(store.takeNotices()).toEqual([]);
    // No token any more: a second sign-in merges nothing.
    expect(await store.mergeAfterSignIn(async () => Promise.reject(new Error('not called')))).toEqual([]);
    expect(merged).toEqual(['guest']);
  });

  it('keeps the token when the request fails, to merge at the next sign-in', async () => {
    const storage = new MemoryStorage();
    const store = new GuestCartStore(storage);
    storage.setItem(TOKEN_KEY, 'guest');
    expect(await store.mergeAfterSignIn(() => Promise.reject(new Error('offline')))).toEqual([]);
    expect(store.token).toBe('guest');
    expect(await store.mergeAfterSignIn(async () => null)).toEqual([]);
    expect(store.token).toBe('guest');
  });

  it('forgets a token the server refuses for good, and an already-merged cart says nothing', async () => {
    const storage = new MemoryStorage();
    const store = new GuestCartStore(storage);
    storage.setItem(TOKEN_KEY, 'expired');
    const notices = await store.mergeAfterSignIn(async () => ({
      notices: [],
      userErrors: [{ code: 'INVALID_TOKEN', message: 'This cart token is expired; start a new cart.' }],
    }));
    expect(notices.map((n) => n.code)).toEqual(['INVALID_TOKEN']);
    expect(store.token).toBeNull();
    storage.setItem(TOKEN_KEY, 'twice');
    expect(await store.mergeAfterSignIn(async () => ({ notices: [{ code: 'ALREADY_MERGED', message: 'x' }], userErrors: [] }))).toEqual([]);
    expect(store.token).toBeNull();
  });
});

describe('pricing words', () => {
  it('says why a code does not apply', () => {
    expect(refusalText('EXPIRED')).toBe('This code has expired.');
    expect(refusalText('MINIMUM_NOT_MET')).toMatch(/minimum/);
    expect(refusalText('SOMETHING_NEW')).toBe('This code does not apply to your cart.');
    expect(refusalText(null)).toBe('This code does not apply to your cart.');
  });

  it('writes delivery estimates and cleans countries', () => {
    expect(deliveryEstimate(1, 1)).toBe('1 business day');
    expect(deliveryEstimate(3, 5)).toBe('3–5 business days');
    expect(cleanCountry(' gb ')).toBe('GB');
    expect(cleanCountry('GBR')).toBeNull();
    expect(cleanCountry('1A')).toBeNull();
  });
});
