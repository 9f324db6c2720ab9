// The header's link to the cart with its count: the signed-in user's cart, or a guest's by its token.
import { NavLink } from 'react-router-dom';
import { useCart } from '../lib/useCart';
import { useHydrated } from '../lib/head';

export function CartLink() {
  const { cart, signedIn, loading, error, input } = useCart('cache-first'); // the user's, or a guest's by its token
  const hydrated = useHydrated();
  // A count only when it is known: none on the server and while hydrating (the cart is the
  // browser's), while loading, or when the cart cannot be read (never a made-up "0"); a signed-out
  // shopper without a guest cart has none.
  const unknown = !hydrated || (!cart && (loading || !!error || signedIn || !!input.cartToken));
  const count = cart?.totalQuantity ?? 0;
  return (
    <NavLink to="/cart" className="cart-link">
      Cart{' '}
      {unknown ? (
        error && (
          <span className="muted small" data-testid="cart-count-unknown">
            (unavailable)
          </span>
        )
      ) : (
        <span className="badge" aria-label={`${count} items`} data-testid="cart-count">
          {count}
        </span>
      )}
    </NavLink>
  );
}
