// Subscriptions that outlive their socket. graphql-ws retries a dropped connection by itself,
// but some closes are final for it — the router's 4401 when the access token expires, for one —
// and then the subscription just ends in an error. A live page (orders feed, dashboard, order
// status) must carry on: wait, back off, and subscribe again with variables computed afresh,
// so the orders feed resumes after the last event id it showed.
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { useApolloClient, type ApolloClient, type OperationVariables, type TypedDocumentNode } from '@apollo/client';

export interface LiveHandlers<T> {
  onData(data: T): void;
  onError?(error: unknown, retryInMs: number): void;
}

type Subscribable = Pick<ApolloClient<unknown>, 'subscribe'>;
const MAX_BACKOFF_MS = 30_000;

/** Keep `document` subscribed until `stop()`; `variables()` is asked again for every (re)subscribe. */
export function keepSubscribed<T, V extends OperationVariables>(
  client: Subscribable,
  document: TypedDocumentNode<T, V>,
  variables: () => V,
  handlers: LiveHandlers<T>,
  firstBackoffMs = 1000,
): () => void {
  let stopped = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: { unsubscribe(): void } | undefined;
  const start = (): void => {
    current = client.subscribe<T, V>({ query: document, variables: variables() }).subscribe({
      next: (result) => {
        failures = 0;
        if (result.data) handlers.onData(result.data);
      },
      error: (error: unknown) => {
        if (stopped) return;
        const wait = Math.min(MAX_BACKOFF_MS, firstBackoffMs * 2 ** failures++);
        handlers.onError?.(error, wait);
        timer = setTimeout(start, wait);
      },
    });
  };
  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    current?.unsubscribe();
  };
}

/**
 * React binding of keepSubscribed: resubscribes when `key` changes (the variables' identity);
 * `error` is the last failure while it waits to retry, cleared by the next data.
 */
export function useLiveSubscription<T, V extends OperationVariables>(
  document: TypedDocumentNode<T, V>,
  variables: () => V,
  key: string,
  onData: (data: T) => void,
): { data: T | null; error: Error | null } {
  const client = useApolloClient();
  const [state, setState] = useState<{ data: T | null; error: Error | null }>({ data: null, error: null });
  const latest = useRef({ variables, onData });
  latest.current = { variables, onData };
  useEffect(() => {
    setState({ data: null, error: null });
    return keepSubscribed(client, document, () => latest.current.variables(), {
      onData: (data) => {
        setState({ data, error: null });
        latest.current.onData(data);
      },
      onError: (error, wait) => {
        const message = error instanceof Error ? error.message : String(error);
        setState((s) => ({ ...s, error: new Error(`${message} (retrying in ${Math.round(wait / 1000)} s)`) }));
      },
    });
  }, [client, document, key]);
  return state;
}

export interface SocketState {
  connected: boolean;
  /** How many times the socket came back after a drop. */
  reconnects: number;
}

export interface SocketEvents {
  on(event: 'connected', listener: (socket: unknown, payload: unknown, wasRetry: boolean) => void): () => void;
  on(event: 'closed', listener: (event: unknown) => void): () => void;
}

/**
 * The subscription socket's state, followed from the client's creation (a page that mounts
 * while the socket is already open still knows it is connected).
 */
export class SocketWatch {
  private state: SocketState = { connected: false, reconnects: 0 };
  private listeners = new Set<() => void>();

  constructor(ws: SocketEvents) {
    ws.on('connected', (_socket, _payload, wasRetry) => this.set({ connected: true, reconnects: this.state.reconnects + (wasRetry ? 1 : 0) }));
    ws.on('closed', () => this.set({ ...this.state, connected: false }));
  }

  get current(): SocketState {
    return this.state;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(state: SocketState): void {
    this.state = state;
    for (const listener of [...this.listeners]) listener();
  }
}

/** The socket's state (a page that must resume from where it was resubscribes when `reconnects` changes). */
export function useSocketState(watch: SocketWatch): SocketState {
  return useSyncExternalStore(watch.subscribe, () => watch.current);
}
