// React access to the shop's session (who is signed in) next to Apollo's client.
import { createContext, useContext, useSyncExternalStore, type ReactNode } from 'react';
import type { Shop } from './apollo';
import type { SessionUser } from './session';

const ShopContext = createContext<Shop | null>(null);

export function ShopProvider({ shop, children }: { shop: Shop; children: ReactNode }) {
  return <ShopContext.Provider value={shop}>{children}</ShopContext.Provider>;
}

export function useShop(): Shop {
  const shop = useContext(ShopContext);
  if (!shop) throw new Error('useShop outside <ShopProvider>');
  return shop;
}

/**
 * The signed-in user (re-renders on sign-in, sign-out and token refresh), or null. Null on the
 * server and while the page hydrates (the session is the browser's), then the browser's user.
 */
export function useUser(): SessionUser | null {
  const { session } = useShop();
  return useSyncExternalStore(session.subscribe, () => session.user, signedOut);
}
const signedOut = () => null;

/**
 * Whether the session a reload left behind is still being restored from the cookie (who is signed
 * in is not known yet). False on the server and while the page hydrates, as useUser's null is.
 */
export function useSessionPending(): boolean {
  const { session } = useShop();
  return useSyncExternalStore(session.subscribe, () => session.pending, notPending);
}
const notPending = () => false;
