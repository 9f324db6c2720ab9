// The storefront's shell: header (categories, search, cart, account), routes, and the admin area
// loaded on demand (its charts stay out of the shopper's initial JavaScript).
import { lazy, Suspense, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link, NavLink, Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { CategoryNavDocument, LogoutDocument } from './gql/graphql';
import { guestCart, type MergeNotice } from './lib/guestCart';
import { useSessionPending, useShop, useUser } from './lib/shop';
import { Loading } from './components/ui';
import { Region } from './components/Region';
import { CartLink } from './components/CartLink';
import { NotFound } from './components/NotFound';
import { useHydrated } from './lib/head';
import { useOffline } from './lib/offline';
import { HomePage } from './pages/Home';
import { BrowsePage } from './pages/Browse';
import { ProductPage } from './pages/Product';
import { CartPage } from './pages/Cart';
import { SignInPage, SignUpPage } from './pages/Auth';
import { CheckoutPage } from './pages/Checkout';
import { GuestCheckoutPage } from './pages/GuestCheckout';
import { GuestOrderPage } from './pages/GuestOrder';
import { OrderPage, OrdersPage } from './pages/Orders';
import { AccountPage } from './pages/Account';
import { ForgotPasswordPage, ResetPasswordPage } from './pages/PasswordReset';

const AdminPage = lazy(() => import('./admin/AdminPage'));

function SearchBox() {
  const navigate = useNavigate();
  const location = useLocation();
  const [text, setText] = useState(() => new URLSearchParams(location.search).get('q') ?? '');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const q = text.trim();
    navigate(q ? `/products?q=${encodeURIComponent(q)}` : '/products');
  };
  return (
    // A plain GET form too: without JavaScript it still reaches the results page.
    <form role="search" method="get" action="/products" onSubmit={submit} className="search">
      <label htmlFor="search-input" className="visually-hidden">
        Search products
      </label>
      <input id="search-input" type="search" name="q" value={text} onChange={(e) => setText(e.target.value)} placeholder="Search products" />
      <button type="submit">Search</button>
    </form>
  );
}

function AccountMenu() {
  const user = useUser();
  const { session, client } = useShop();
  const navigate = useNavigate();
  const [logout] = useMutation(LogoutDocument);
  const pending = useSessionPending();
  if (!user && pending) return null; // being restored from the cookie: no "Sign in" flash
  if (!user) {
    return (
      <>
        <NavLink to="/signin">Sign in</NavLink>
        <NavLink to="/signup">Sign up</NavLink>
      </>
    );
  }
  const signOut = async () => {
    await logout({ variables: { input: {} } }).catch(() => undefined); // the cookie's session, revoked and cleared
    session.signOut();
    await client.clearStore();
    navigate('/');
  };
  return (
    <>
      {user.role === 'ADMIN' && <NavLink to="/admin">Admin</NavLink>}
      <NavLink to="/orders">Orders</NavLink>
      <NavLink to="/account" data-testid="account-name">
        {user.name}
      </NavLink>
      <button type="button" className="link-button" onClick={signOut}>
        Sign out
      </button>
    </>
  );
}

function CategoryMenu() {
  const { data } = useQuery(CategoryNavDocument);
  if (!data) return null;
  return (
    <nav aria-label="Categories" className="categories">
      <ul>
        {data.categories.map((c) => (
          <li key={c.id}>
            <Link to={`/products?category=${encodeURIComponent(c.slug)}`}>{c.name}</Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}

/** What the guest cart's merge at sign-in could not do as asked (quantity capped, unavailable): shown once. */
function MergeNotices() {
  const [notices, setNotices] = useState<MergeNotice[]>(() => guestCart.takeNotices());
  useEffect(
    () =>
      guestCart.subscribe(() => {
        const fresh = guestCart.takeNotices();
        if (fresh.length > 0) setNotices(fresh);
      }),
    [],
  );
  if (notices.length === 0) return null;
  return (
    <div className="notice merge-notices" role="status" data-testid="merge-notices">
      <p>Your cart from before you signed in was added to your account’s cart, except:</p>
      <ul>
        {notices.map((n, i) => (
          <li key={i}>{n.message}</li>
        ))}
      </ul>
      <button type="button" className="link-button" onClick={() => setNotices([])}>
        Dismiss
      </button>
    </div>
  );
}

/** Offline: what still works (pages seen before) and what does not (changes), said once over the page. */
function OfflineNotice() {
  if (!useOffline()) return null;
  return (
    <p className="notice offline-notice" role="status" data-testid="offline-notice">
      You are offline. Pages you have visited still show; the cart, checkout and your account need a connection.
    </p>
  );
}

/** Pages that need a signed-in user send others to sign in, and back afterwards. */
export function RequireUser({ role, children }: { role?: 'ADMIN'; children: ReactNode }) {
  const user = useUser();
  const pending = useSessionPending();
  const location = useLocation();
  const hydrated = useHydrated();
  // The server (and the hydrating page) cannot know who is signed in: wait for the browser's session,
  // restored from its cookie after a reload.
  if (!hydrated) return <Loading />;
  if (!user && pending) return <Loading what="Signing you in" />;
  if (!user) return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  if (role && user.role !== role) return <p role="alert">This page is for administrators.</p>;
  return <>{children}</>;
}

export function App() {
  const location = useLocation();
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="site-header">
        <div className="bar">
          <Link to="/" className="brand">
            Shopgraph
          </Link>
          <SearchBox />
          <nav aria-label="Account" className="account">
            <Region what="Cart" compact>
              <CartLink />
            </Region>
            <AccountMenu />
          </nav>
        </div>
        <Region what="The category menu" compact>
          <CategoryMenu />
        </Region>
      </header>
      <main id="main">
        <OfflineNotice />
        <MergeNotices />
        <Region what="This page" resetKey={location.pathname}>
          <Suspense fallback={<Loading />}>
            <Routes>
              <Route path="/" element={<HomePage />} />
              <Route path="/products" element={<BrowsePage />} />
              <Route path="/p/:sku" element={<ProductPage />} />
              <Route path="/signin" element={<SignInPage />} />
              <Route path="/signup" element={<SignUpPage />} />
              <Route path="/forgot-password" element={<ForgotPasswordPage />} />
              <Route path="/reset-password" element={<ResetPasswordPage />} />
              <Route path="/cart" element={<CartPage />} />
              <Route
                path="/checkout"
                element={
                  <RequireUser>
                    <CheckoutPage />
                  </RequireUser>
                }
              />
              <Route path="/checkout/guest" element={<GuestCheckoutPage />} />
              <Route path="/order-status" element={<GuestOrderPage />} />
              <Route
                path="/orders"
                element={
                  <RequireUser>
                    <OrdersPage />
                  </RequireUser>
                }
              />
              <Route
                path="/orders/:number"
                element={
                  <RequireUser>
                    <OrderPage />
                  </RequireUser>
                }
              />
              <Route
                path="/account"
                element={
                  <RequireUser>
                    <AccountPage />
                  </RequireUser>
                }
              />
              <Route
                path="/admin/*"
                element={
                  <RequireUser role="ADMIN">
                    <AdminPage />
                  </RequireUser>
                }
              />
              <Route path="*" element={<NotFound />} />
            </Routes>
          </Suspense>
        </Region>
      </main>
      <footer className="site-footer">
        <p>
          Shopgraph demo shop · the graph is at <a href="/graphql">/graphql</a>
        </p>
      </footer>
    </>
  );
}
