// Whether the browser is offline, for the shell's notice and for what must not be tried offline:
// the cart, checkout and account change the shop, so they refuse at once (nothing is queued).
import { useSyncExternalStore } from 'react';
import { ApolloLink, Observable, type FetchResult } from '@apollo/client/core';
import { getMainDefinition } from '@apollo/client/utilities';

/** The service worker's cache of catalog answers (sw/sw.ts keeps them under this name). */
export const CATALOG_CACHE = 'shopgraph-catalog';

export const OFFLINE_CHANGE = 'You are offline: nothing was changed. Try again when you are back online.';

export function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

function subscribe(listener: () => void): () => void {
  window.addEventListener('online', listener);
  window.addEventListener('offline', listener);
  return () => {
    window.removeEventListener('online', listener);
    window.removeEventListener('offline', listener);
  };
}

export function useOffline(): boolean {
  return useSyncExternalStore(subscribe, isOffline, () => false);
}

/** A change refused because the browser is offline (never sent, never queued). */
export class OfflineError extends Error {
  constructor() {
    super(OFFLINE_CHANGE);
    this.name = 'OfflineError';
  }
}

/** Mutations fail at once offline, with OfflineError, rather than wait on a network that is not there. */
export function offlineLink(): ApolloLink {
  return new ApolloLink((operation, forward) => {
    const definition = getMainDefinition(operation.query);
    if (isOffline() && definition.kind === 'OperationDefinition' && definition.operation === 'mutation') {
      return new Observable<FetchResult>((observer) => observer.error(new OfflineError()));
    }
    return forward(operation);
  });
}
