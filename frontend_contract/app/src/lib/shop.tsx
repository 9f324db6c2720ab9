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
