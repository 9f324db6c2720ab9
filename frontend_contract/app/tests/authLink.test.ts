// The auth link against a downstream link that plays the router: it refuses expired tokens
// with HTTP 401 / UNAUTHENTICATED, and the Session refreshes with a rotating refresh token (the
// HttpOnly cookie, played here by `cookie`: the page never holds it).
import { describe, expect, it } from 'vitest';
import { ApolloLink, execute, Observable, gql, type FetchResult } from '@apollo/client/core';
import { createAuthLink } from '../src/lib/authLink';
import { HINT_KEY, Session, type Exclusive, type KeyValueStore, type RefreshFn } from '../src/lib/session';

const QUERY = gql`
  query Me {
    me {
      id
    }
  }
`;

function memoryStore(): KeyValueStore {
  const data = new Map<string, string>();
  return { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v), removeItem: (k) => void data.delete(k) };
}

const ANN = { id: 'u1', name: 'Ann', email: 'a@x', role: 'CUSTOMER' } as const;

/** A refresh endpoint with rotating tokens in a cookie jar: each refresh token works once. */
function rotatingRefresh() {
  const calls: string[] = [];
  let generation = 1;
  const valid = new Set(['refresh-1']);
  const jar = { cookie: 'refresh-1' };
  const fn: RefreshFn = async () => {
    const token = jar.cookie;
    calls.push(token);
    await new Promise((r) => setTimeout(r, 5));
    if (!valid.delete(token)) return null;
    generation += 1;
    valid.add(`refresh-${generation}`);
    jar.cookie = `refresh-${generation}`;
    return { accessToken: `access-${generation}`, expiresIn: 900, user: ANN };
  };
  return { fn, calls, jar };
}

/** The router: accepts only `good` access tokens; `mode` says how it refuses the others. */
function router(good: Set<string>, mode: 'http401' | 'graphql') {
  const seen: Array<string | undefined> = [];
  const link = new ApolloLink(
    (operation) =>
      new Observable<FetchResult>((observer) => {
        const auth = (operation.getContext().headers as Record<string, string> | undefined)?.authorization;
        seen.push(auth);
        const token = auth?.replace(/^Bearer /, '');
        if (token && !good.has(token)) {
          const errors = [{ message: 'token expired', extensions: { code: 'UNAUTHENTICATED' } }];
          if (mode === 'http401') observer.error(Object.assign(new Error('Response not successful: 401'), { statusCode: 401, result: { errors } }));
          else {
            observer.next({ errors } as unknown as FetchResult);
            observer.complete();
          }
          return;
        }
        observer.next({ data: { me: token ? { id: 'u1' } : null } });
        observer.complete();
      }),
  );
  return { link, seen };
}

function signedIn(refresh: RefreshFn, now = () => 1_000_000): Session {
  const session = new Session(memoryStore(), refresh, now);
  session.signIn({ accessToken: 'access-1', expiresIn: 900 }, ANN);
  return session;
}

const run = (link: ApolloLink) =>
  new Promise<FetchResult>((resolve, reject) => {
    execute(link, { query: QUERY }).subscribe({ next: resolve, error: reject });
  });

describe('auth link', () => {
  for (const mode of ['http401', 'graphql'] as const) {
    it(`refreshes once and retries once when the token is refused (${mode})`, async () => {
      const refresh = rotatingRefresh();
      const session = signedIn(refresh.fn);
      const downstream = router(new Set(['access-2']), mode);
      const result = await run(createAuthLink(session).concat(downstream.link));
      expect(result.data).toEqual({ me: { id: 'u1' } });
      expect(downstream.seen).toEqual(['Bearer access-1', 'Bearer access-2']);
      expect(refresh.calls).toEqual(['refresh-1']);
      expect(session.accessToken).toBe('access-2');
    });
  }

  it('spends the refresh token once for concurrent refused requests', async () => {
    const refresh = rotatingRefresh();
    const session = signedIn(refresh.fn);
    const downstream = router(new Set(['access-2']), 'http401');
    const link = createAuthLink(session).concat(downstream.link);
    const results = await Promise.all([run(link), run(link), run(link)]);
    expect(results.map((r) => r.data)).toEqual([{ me: { id: 'u1' } }, { me: { id: 'u1' } }, { me: { id: 'u1' } }]);
    expect(refresh.calls).toEqual(['refresh-1']); // a second use would have signed the family out
  });

  it('gives up after one retry; signed out, it retries once anonymously', async () => {
    const refresh = rotatingRefresh();
    const session = signedIn(refresh.fn);
    const downstream = router(new Set(), 'http401'); // refuses even the fresh token
    await expect(run(createAuthLink(session).concat(downstream.link))).rejects.toMatchObject({ statusCode: 401 });
    expect(downstream.seen).toEqual(['Bearer access-1', 'Bearer access-2']);

    const stale = signedIn(async () => null); // the refresh token was revoked
    const anonymous = router(new Set(), 'http401');
    const result = await run(createAuthLink(stale).concat(anonymous.link));
    expect(stale.current).toBeNull(); // signed out
    expect(anonymous.seen).toEqual(['Bearer access-1', undefined]); // the one retry, anonymously
    expect(result.data).toEqual({ me: null });
  });

  it('refreshes before sending a token that is about to expire', async () => {
    const refresh = rotatingRefresh();
    let now = 1_000_000;
    const session = signedIn(refresh.fn, () => now);
    now += 890_000; // 10 s before expiry
    const downstream = router(new Set(['access-2']), 'http401');
    await run(createAuthLink(session).concat(downstream.link));
    expect(downstream.seen).toEqual(['Bearer access-2']);
  });

  it('sends anonymous requests without a token and never refreshes for them', async () => {
    const refresh = rotatingRefresh();
    const session = new Session(memoryStore(), refresh.fn);
    const downstream = router(new Set(), 'http401');
    const result = await run(createAuthLink(session).concat(downstream.link));
    expect(result.data).toEqual({ me: null });
    expect(downstream.seen).toEqual([undefined]);
    expect(refresh.calls).toEqual([]);
  });
});

describe('session', () => {
  it('keeps no token in storage: only a hint that a cookie may hold a session', async () => {
    const store = memoryStore();
    const session = new Session(store, rotatingRefresh().fn);
    session.signIn({ accessToken: 'access-1', expiresIn: 900 }, ANN);
    expect(store.getItem(HINT_KEY)).toBe('1');
    await session.refresh();
    expect(session.accessToken).toBe('access-2');
    expect(store.getItem(HINT_KEY)).toBe('1');
    session.signOut();
    expect(store.getItem(HINT_KEY)).toBeNull();
  });

  it('restores a reloaded page from the cookie, and asks nothing without the hint', async () => {
    const refresh = rotatingRefresh();
    const store = memoryStore();
    const anonymous = new Session(store, refresh.fn);
    expect(anonymous.pending).toBe(false);
    await anonymous.restore();
    expect(refresh.calls).toEqual([]);

    store.setItem(HINT_KEY, '1'); // an earlier page signed in
    const reloaded = new Session(store, refresh.fn);
    expect(reloaded.pending).toBe(true);
    await reloaded.restore();
    expect(reloaded.pending).toBe(false);
    expect(reloaded.user).toEqual(ANN);
    expect(reloaded.accessToken).toBe('access-2');

    const gone = new Session(store, async () => null); // the cookie was revoked or cleared
    await gone.restore();
    expect(gone.user).toBeNull();
    expect(store.getItem(HINT_KEY)).toBeNull();
  });

  it('takes turns with other tabs: two tabs never spend the same cookie', async () => {
    const refresh = rotatingRefresh();
    let queue = Promise.resolve();
    const oneAtATime: Exclusive = (task) => {
      const turn = queue.then(task);
      queue = turn.then(
        () => undefined,
        () => undefined,
      );
      return turn;
    };
    const tabs = [0, 1].map(() => {
      const tab = new Session(memoryStore(), refresh.fn, Date.now, oneAtATime);
      tab.signIn({ accessToken: 'access-1', expiresIn: 900 }, ANN);
      return tab;
    });
    expect(await Promise.all(tabs.map((t) => t.refresh()))).toEqual([true, true]);
    expect(refresh.calls).toEqual(['refresh-1', 'refresh-2']);
  });
});

describe('session restore', () => {
  it('tells callers when who is signed in is known', async () => {
    const store = memoryStore();
    store.setItem(HINT_KEY, '1');
    const session = new Session(store, rotatingRefresh().fn);
    const restoring = session.restore();
    expect(session.restore()).toBe(restoring); // one restore at a time
    let known = false;
    const waiting = session.settled().then(() => (known = true));
    expect(session.user).toBeNull();
    await waiting;
    expect(known).toBe(true);
    expect(session.user).toEqual(ANN);
    await session.settled(); // nothing running: at once
  });
});
