// The Apollo Client of the storefront: one normalised cache, HTTP for queries and mutations,
// graphql-ws for subscriptions, every request signed by the session (lib/authLink.ts), and —
// when the build enables it — persisted queries sent by their manifest id.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split, type NormalizedCacheObject } from '@apollo/client/core';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createPersistedQueryLink, type ErrorResponse } from '@apollo/client/link/persisted-queries';
import { getMainDefinition } from '@apollo/client/utilities';
import { print } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { RefreshSessionDocument, type RefreshSessionMutation } from '../gql/graphql';
import { createAuthLink } from './authLink';
import { SocketWatch } from './live';
import { CATALOG_CACHE, offlineLink } from './offline';
import { HINT_KEY, Session, type RefreshFn } from './session';

export const GRAPHQL_PATH = '/graphql';

/**
 * Every id in this graph is a UUID (events: a stream position), unique across types, so the
 * cache keys entities by id alone. That lets documents go out exactly as the operations in
 * frontend_contract/operations are written (no __typename added), which is what makes the
 * manifest's ids and bodies match what this client sends.
 */
export function createCache(): InMemoryCache {
  return new InMemoryCache({
    addTypename: false,
    dataIdFromObject: (object) => (typeof object.id === 'string' ? `id:${object.id}` : undefined),
    typePolicies: {
      Query: {
        fields: {
          // Connections are pages chosen by arguments: keep each page apart (no merging).
          products: { keyArgs: ['first', 'after', 'search', 'filter', 'sortKey', 'reverse'] },
        },
      },
    },
  });
}

/**
 * RefreshSession over plain fetch (not through the client, whose auth link waits on it): the
 * browser sends the HttpOnly session cookie and stores the rotated one the answer sets.
 */
export function fetchRefresh(url: string): RefreshFn {
  const query = print(RefreshSessionDocument);
  return async () => {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
        body: JSON.stringify({ operationName: 'RefreshSession', query, variables: { input: {} } }),
      });
    } catch {
      throw new Error('could not reach the shop to refresh the session');
    }
    const body = (await response.json()) as { data?: RefreshSessionMutation };
    const payload = body.data?.refreshToken;
    if (!payload?.accessToken || !payload.user) return null; // INVALID_TOKEN / TOKEN_REUSED: signed out
    return { accessToken: payload.accessToken, expiresIn: payload.expiresIn ?? 900, user: payload.user };
  };
}

declare const __SHOPGRAPH_PERSISTED__: Record<string, string> | null;

/** Operation name -> manifest id, when the build sends persisted queries (else null). */
export function persistedIds(): Record<string, string> | null {
  return typeof __SHOPGRAPH_PERSISTED__ === 'undefined' ? null : __SHOPGRAPH_PERSISTED__;
}

/**
 * Persisted queries by manifest id, in Apollo's protocol (extensions.persistedQuery.sha256Hash):
 * a safelisting router serves the id, an APQ router asks once for the body (then sent). The app
 * sends each operation exactly as the manifest prints it (a Vitest test holds them equal), so the
 * id is also the body's SHA-256, as APQ expects.
 */
export function persistedQueryLink(ids: Record<string, string>): ApolloLink {
  // A router that knows nothing of persisted queries answers a body without a query with 400:
  // send the query itself then, and stop sending ids to it (as for PersistedQueryNotSupported).
  const unsupported = ({ meta, networkError }: ErrorResponse): boolean =>
    meta.persistedQueryNotSupported || (networkError as { statusCode?: number } | undefined)?.statusCode === 400;
  return createPersistedQueryLink({
    disable: unsupported,
    retry: (response) => unsupported(response) || response.meta.persistedQueryNotFound,
    generateHash: (document) => {
      const definition = getMainDefinition(document);
      const name = definition.kind === 'OperationDefinition' ? definition.name?.value : undefined;
      const id = name ? ids[name] : undefined;
      if (!id) throw new Error(`operation ${name ?? '(anonymous)'} is not in the persisted-query manifest`);
      return id;
    },
  });
}

export interface Shop {
  client: ApolloClient<unknown>;
  session: Session;
  ws: WsClient;
  socket: SocketWatch;
}

/** The HTTP link to the graph: persisted queries by id when the build sends them. */
function httpLink(uri: string, headers?: Record<string, string>, signal?: AbortSignal): ApolloLink {
  const http = new HttpLink({ uri, headers, fetchOptions: signal ? { signal } : undefined });
  const ids = persistedIds();
  return ids ? persistedQueryLink(ids).concat(http) : http;
}

class NoSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  constructor() {
    throw new Error('no WebSocket on the server');
  }
}

/**
 * The server renderer's shop (src/server): one per page request, so no cache is shared between
 * shoppers; signed out (the session is the browser's); queries only, over HTTP to the router.
 * `headers` go with every request (the shopper's address, for the router's limits and logs).
 */
export function createServerShop(graphUrl: string, headers: Record<string, string> = {}): Shop {
  const none = { getItem: () => null, setItem: () => undefined, removeItem: () => undefined };
  const session = new Session(none, async () => null);
  // Lazy and never subscribed to: no socket is opened (a page's subscriptions start in the browser).
  const ws = createClient({ url: graphUrl.replace(/^http/, 'ws'), lazy: true, webSocketImpl: NoSocket });
  // A page gives up on the graph after 20 s (the router waits 30 s for the page): an error, not a hang.
  const link = httpLink(graphUrl, headers, AbortSignal.timeout(20_000));
  const client = new ApolloClient({ ssrMode: true, link, cache: createCache(), devtools: { enabled: false } });
  return { client, session, ws, socket: new SocketWatch(ws) };
}

/**
 * The browser's shop. `state` is the server's cache for this page (src/entry-client.tsx): the page
 * hydrates from it, and its queries are not sent again while it hydrates (ssrForceFetchDelay).
 */
export function createShop(origin: string = window.location.origin, state?: NormalizedCacheObject): Shop {
  const httpUrl = origin + GRAPHQL_PATH;
  const wsUrl = origin.replace(/^http/, 'ws') + GRAPHQL_PATH;
  const session = new Session(window.localStorage, fetchRefresh(httpUrl));
  void session.restore(); // a reload: the cookie (if any) signs this page in again
  // Tabs share the cookie: one signing out or in is followed by the others.
  window.addEventListener('storage', (e) => {
    if (e.key !== HINT_KEY) return;
    if (e.newValue === null) session.forget();
    else if (!session.user) void session.restore();
  });

  // Subscriptions: the token goes in connection_init; a reconnect (retried forever, backing off)
  // asks for a fresh one, so a long-open dashboard outlives its 15-minute access tokens.
  const ws = createClient({
    url: wsUrl,
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    connectionParams: async () => {
      const token = await session.freshAccessToken();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
  });
  const socket = new SocketWatch(ws);
  // A new identity means new subscriptions: drop the socket that was signed as the old one.
  let signedAs = session.user?.id;
  session.subscribe(() => {
    const now = session.user?.id;
    if (now !== signedAs) {
      signedAs = now;
      ws.terminate();
      // What the service worker kept for offline was answered for the previous viewer: drop it.
      void globalThis.caches?.delete(CATALOG_CACHE).catch(() => undefined);
    }
  });

  const link = split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    new GraphQLWsLink(ws),
    offlineLink().concat(createAuthLink(session)).concat(httpLink(httpUrl)),
  );

  const cache = createCache();
  if (state) cache.restore(state);
  const client = new ApolloClient({ link, cache, ssrForceFetchDelay: state ? 1000 : 0, devtools: { enabled: false } });
  return { client, session, ws, socket };
}
