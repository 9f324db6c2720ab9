import { describe, expect, it } from 'vitest';
import { GuestOrderStore, ORDERS_KEY } from '../src/lib/guestOrders';
import type { StorageLike } from '../src/lib/guestCart';

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

const order = (n: number) => ({ token: `o1.t${n}.sig`, number: `SG-${n}`, email: `g${n}@example.com` });

describe('guest orders kept for the claim', () => {
  it('keeps each order once, the newest last', () => {
    const store = new GuestOrderStore(new MemoryStorage());
    store.add(order(1));
    store.add(order(2));
    store.add(order(1));
    expect(store.all().map((o) => o.number)).toEqual(['SG-2', 'SG-1']);
  });

  it('forgets claimed, forged and expired orders, keeps one placed with another address', async () => {
    const storage = new MemoryStorage();
    const store = new GuestOrderStore(storage);
    [1, 2, 3, 4].forEach((n) => store.add(order(n)));
    const asked: string[][] = [];
    const claimed = await store.claimAfterSignIn(async (tokens) => {
      asked.push(tokens);
      return {
        orders: [{ number: 'SG-1' }],
        userErrors: [
          { code: 'INVALID_TOKEN', field: ['input', 'lookupTokens', '1'] },
          { code: 'NOT_FOUND', field: ['input', 'lookupTokens', '2'] },
          { code: 'TOKEN_EXPIRED', field: ['input', 'lookupTokens', '3'] },
        ],
      };
    });
    expect(asked).toEqual([['o1.t1.sig', 'o1.t2.sig', 'o1.t3.sig', 'o1.t4.sig']]);
    expect(claimed).toEqual(['SG-1']);
    expect(store.all().map((o) => o.number)).toEqual(['SG-3']);
  });

  it('keeps everything when the claim fails, and survives bad storage contents', async () => {
    const storage = new MemoryStorage();
    const store = new GuestOrderStore(storage);
    store.add(order(1));
    expect(await store.claimAfterSignIn(async () => Promise.reject(new Error('offline')))).toEqual([]);
    expect(store.all()).toHaveLength(1);
    storage.setItem(ORDERS_KEY, '{not json');
    expect(store.all()).toEqual([]);
    expect(await store.claimAfterSignIn(async () => null)).toEqual([]);
  });
});
