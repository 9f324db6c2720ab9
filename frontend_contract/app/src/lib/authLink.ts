// The Apollo link that signs requests with the session's access token, and when the router says
// the token is no longer good (HTTP 401 / UNAUTHENTICATED), spends the rotating refresh token
// once and retries the operation once with the new token. A second refusal goes to the caller.
// When the session cannot be refreshed (signed out elsewhere, revoked), the one retry goes out
// anonymously: public data still loads, and private data answers "sign in".
import { ApolloLink, Observable, type FetchResult, type Operation } from '@apollo/client/core';
import type { ObservableSubscription } from '@apollo/client/utilities';

export interface TokenSource {
  /** The access token to send (already refreshed if it was about to expire), or null. */
  freshAccessToken(): Promise<string | null>;
  /** Spend the refresh token; true when there is a new access token to retry with (else signed out). */
  refresh(): Promise<boolean>;
}

interface ErrorWithStatus {
  statusCode?: number;
  result?: unknown;
}

function hasUnauthenticatedCode(result: unknown): boolean {
  const errors = (result as { errors?: Array<{ extensions?: { code?: unknown } }> } | null)?.errors;
  return Array.isArray(errors) && errors.some((e) => e?.extensions?.code === 'UNAUTHENTICATED');
}

/** Whether a network error or a result says the access token was refused. */
export function isUnauthenticated(errorOrResult: unknown): boolean {
  if (errorOrResult && typeof errorOrResult === 'object') {
    const e = errorOrResult as ErrorWithStatus;
    if (e.statusCode === 401) return true;
    if (e.result !== undefined && hasUnauthenticatedCode(e.result)) return true;
  }
  return hasUnauthenticatedCode(errorOrResult);
}

function withToken(operation: Operation, token: string | null): void {
  operation.setContext(({ headers = {} }: { headers?: Record<string, string> }) => {
    const next = { ...headers };
    if (token) next.authorization = `Bearer ${token}`;
    else delete next.authorization;
    return { headers: next };
  });
}

export function createAuthLink(tokens: TokenSource): ApolloLink {
  return new ApolloLink(
    (operation, forward) =>
      new Observable<FetchResult>((observer) => {
        let inner: ObservableSubscription | null = null;
        let closed = false;

        const run = (token: string | null, retried: boolean): void => {
          withToken(operation, token);
          // Only a request that carried a token can be helped by a refresh (an anonymous one
          // asking for a signed-in field is simply not signed in).
          const canRetry = !retried && token !== null;
          let retrying = false;
          const retry = (): void => {
            retrying = true;
            inner?.unsubscribe();
            tokens
              .refresh()
              .then(async (ok) => {
                const token = ok ? await tokens.freshAccessToken() : null;
                if (!closed) run(token, true);
              })
              .catch((e: unknown) => !closed && observer.error(e));
          };
          inner = forward(operation).subscribe({
            next: (result) => {
              if (canRetry && isUnauthenticated(result)) retry();
              else if (!retrying) observer.next(result);
            },
            error: (error: unknown) => {
              if (canRetry && isUnauthenticated(error)) retry();
              else if (!retrying) observer.error(error);
            },
            complete: () => {
              if (!retrying) observer.complete();
            },
          });
        };

        tokens
          .freshAccessToken()
          .then((token) => !closed && run(token, false))
          .catch((e: unknown) => !closed && observer.error(e));
        return () => {
          closed = true;
          inner?.unsubscribe();
        };
      }),
  );
}
