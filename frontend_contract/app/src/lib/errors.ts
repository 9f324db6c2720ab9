// The one place where what went wrong becomes words a shopper can read. Raw error text (a
// subgraph's "HTTP fetch failed from 'cart': ...", "Cannot return null for non-nullable field")
// never reaches the page: network trouble, an unavailable subgraph or an unexpected GraphQL error
// all read "<What> is unavailable right now — try again"; only codes a shopper can act on get
// words of their own.
import { ApolloError } from '@apollo/client';

/** Error codes (`extensions.code`) with something the shopper can do about them. */
const BY_CODE: Record<string, string> = {
  UNAUTHENTICATED: 'Your session has ended — please sign in again.',
  FORBIDDEN: 'This is not available to your account.',
  UNAUTHORIZED_FIELD_OR_TYPE: 'This is not available to your account.',
  RATE_LIMITED: 'Too many requests — wait a moment and try again.',
  TOO_MANY_REQUESTS: 'Too many requests — wait a moment and try again.',
};

function codesOf(error: unknown): string[] {
  if (error instanceof ApolloError) {
    const codes = error.graphQLErrors.map((e) => e.extensions?.code).filter((c): c is string => typeof c === 'string');
    const network = error.networkError as { result?: { errors?: Array<{ extensions?: { code?: unknown } }> } } | null;
    for (const e of network?.result?.errors ?? []) if (typeof e.extensions?.code === 'string') codes.push(e.extensions.code);
    return codes;
  }
  return [];
}

/** What the shopper reads when `what` (a singular subject: "Cart", "This product") could not be
 * loaded or changed; without `what`, a general line. */
export function kindMessage(error: unknown, what?: string): string {
  for (const code of codesOf(error)) {
    const words = BY_CODE[code];
    if (words) return words;
  }
  if (typeof navigator !== 'undefined' && navigator.onLine === false) return 'You are offline — try again when you are back online.';
  return what ? `${what} is unavailable right now — try again.` : 'Something went wrong on our side — try again.';
}
