// The cart a page shows: the signed-in user's (CartPage), or a signed-out shopper's guest cart
// (GuestCartPage by its token), with the `cartToken` its mutations must carry.
import { useEffect, useSyncExternalStore } from 'react';
import { useQuery, type WatchQueryFetchPolicy } from '@apollo/client';
import { CartPageDocument, GuestCartPageDocument, type CartPageQuery } from '../gql/graphql';
import { cartTokenFor, guestCart } from './guestCart';
import { useSessionPending, useUser } from './shop';

export type CartView = CartPageQuery['cart'];

export function useGuestToken(): string | null {
  return useSyncExternalStore(
    guestCart.subscribe,
    () => guestCart.token,
    () => null,
  ); // the browser's, after hydration
}

export function useCart(fetchPolicy: WatchQueryFetchPolicy = 'cache-and-network') {
  const user = useUser();
  const token = useGuestToken();
  const signedIn = user !== null;
  // Neither read is deduplicated: a read still in flight when a change asks for it again would be
  // shared, and show the cart from before the change. The account's cart is first read the moment
  // the shopper signs in, while the guest cart is being merged into it (the badge kept the
  // account's old count once); a new guest cart's first read, while the first "Add to cart" runs.
  const merging = useSyncExternalStore(
    guestCart.subscribe,
    () => guestCart.merging,
    () => false,
  );
  const mine = useQuery(CartPageDocument, { fetchPolicy, skip: !signedIn || merging, context: { queryDeduplication: false } });
  const pending = useSessionPending(); // not known yet whether this is a guest
  const guest = useQuery(GuestCartPageDocument, {
    fetchPolicy,
    skip: signedIn || pending || !token,
    variables: { token: token ?? '' },
    context: { queryDeduplication: false },
  });
  const guestGone = !signedIn && token !== null && guest.data !== undefined && guest.data.guestCart === null;
  useEffect(() => {
    if (guestGone) guestCart.forget(); // expired or already merged: the next add starts a new one
  }, [guestGone]);
  const active = signedIn ? mine : guest;
  const cart: CartView | null = signedIn ? (mine.data?.cart ?? null) : (guest.data?.guestCart ?? null);
  return {
    cart,
    signedIn,
    loading: active.loading && !cart,
    error: active.error,
    refetch: () => active.refetch(),
    input: cartTokenFor(signedIn, token),
  };
}

/** The cart query to refetch after a change: the one the page is watching (asking for the other warns). */
export function cartQueries(signedIn: boolean) {
  return signedIn ? [CartPageDocument] : [GuestCartPageDocument];
}
