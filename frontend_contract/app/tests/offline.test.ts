// Offline, a change is refused at once (OfflineError: nothing sent, nothing queued); reads still
// go out (the service worker answers the catalog's from what it kept).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApolloLink, execute, gql, Observable, type FetchResult } from '@apollo/client/core';
import { OfflineError, offlineLink } from '../src/lib/offline';

const MUTATION = gql`
  mutation AddToCart {
    addToCart {
      ok
    }
  }
`;
const QUERY = gql`
  query ProductList {
    products {
      id
    }
  }
`;

function network() {
  const sent: string[] = [];
  const link = new ApolloLink(
    (operation) =>
      new Observable<FetchResult>((observer) => {
        sent.push(operation.operationName);
        observer.next({ data: {} });
        observer.complete();
      }),
  );
  return { link, sent };
}

const run = (link: ApolloLink, query: typeof QUERY) =>
  new Promise<FetchResult>((resolve, reject) => execute(link, { query }).subscribe({ next: resolve, error: reject }));

describe('offline link', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('refuses mutations offline without sending them, and lets queries through', async () => {
    vi.stubGlobal('navigator', { onLine: false });
    const downstream = network();
    const link = offlineLink().concat(downstream.link);
    await expect(run(link, MUTATION)).rejects.toBeInstanceOf(OfflineError);
    await run(link, QUERY);
    expect(downstream.sent).toEqual(['ProductList']);
  });

  it('sends mutations online', async () => {
    vi.stubGlobal('navigator', { onLine: true });
    const downstream = network();
    await run(offlineLink().concat(downstream.link), MUTATION);
    expect(downstream.sent).toEqual(['AddToCart']);
  });
});
