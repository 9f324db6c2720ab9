// Checkout as a guest: an e-mail address and the shipping address, for the guest cart (its token).
// As the signed-in checkout: one idempotency key per attempt, the cart priced where it ships before
// "Place order" is enabled, each userError beside its field. The order's lookup token is kept
// (lib/guestOrders) so the confirmation can be opened again and the account claims the order.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useApolloClient, useMutation } from '@apollo/client';
import { Link, useNavigate } from 'react-router-dom';
import { GuestCartPageDocument, GuestCheckoutDocument, SetCartDestinationDocument, type ShippingAddressInput } from '../gql/graphql';
import { AddressFields, EMPTY, toInput } from '../components/AddressFields';
import { Breakdown } from '../components/Breakdown';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, unavailableLines, type UserErrorLike } from '../lib/cart';
import { attemptKeys } from '../lib/checkoutAttempt';
import { cleanCountry } from '../lib/pricing';
import { guestOrders } from '../lib/guestOrders';
import { useCart } from '../lib/useCart';

export function GuestCheckoutPage() {
  const navigate = useNavigate();
  const { cart, loading: cartLoading, error: cartError, refetch, input } = useCart();
  const [email, setEmail] = useState('');
  const [address, setAddress] = useState<ShippingAddressInput>(EMPTY);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const keys = useRef(attemptKeys()).current;
  const client = useApolloClient();
  // Set once the order is placed: never the emptied cart before the order page (see Checkout.tsx).
  const [placed, setPlaced] = useState<string | null>(null);
  const [guestCheckout, { loading, error }] = useMutation(GuestCheckoutDocument);
  const [setDestination, settingDestination] = useMutation(SetCartDestinationDocument, { refetchQueries: [GuestCartPageDocument] });
  const country = cleanCountry(address.country ?? '');
  const region = (address.region ?? '').trim() || null;
  const [refused, setRefused] = useState<string | null>(null);
  const wanted = country ? `${country}|${region ?? ''}` : null;
  const destination = cart?.destination;
  const priced = !!destination && destination.country === country && (destination.region ?? null) === region;
  const repricing = settingDestination.loading || (wanted !== null && !!cart && !priced && refused !== wanted);
  useEffect(() => {
    if (!country || !wanted || !cart || priced || refused === wanted || !input.cartToken) return;
    const timer = setTimeout(() => {
      void setDestination({ variables: { input: { ...input, country, region } } })
        .then((r) => {
          if (!r.data || r.data.setCartDestination.userErrors.length > 0) setRefused(wanted);
        })
        .catch(() => setRefused(wanted));
    }, 400);
    return () => clearTimeout(timer);
  }, [country, region, wanted, priced, refused, cart, input, setDestination]);

  if (placed) return <Loading what={`Order ${placed} is placed. Opening it`} />;
  if (cartLoading) return <Loading what="Loading your cart" />;
  if (cartError && !cart) return <ErrorState what="Cart" error={cartError} retry={() => refetch()} />;
  const items = cart?.items ?? [];
  const cartToken = input.cartToken;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (loading || !cartToken) return;
    const shippingAddress = toInput(address);
    const request = { email: email.trim(), shippingAddress, cartToken };
    const idempotencyKey = keys.keyFor({ ...request, cart: cart?.updatedAt });
    const result = await guestCheckout({ variables: { input: { ...request, idempotencyKey } } }).catch(() => null);
    const payload = result?.data?.guestCheckout;
    if (!payload) return; // network trouble: the same attempt (same key) can be retried safely
    setErrors(payload.userErrors);
    if (payload.order && payload.lookupToken && payload.userErrors.length === 0) {
      keys.finish();
      guestOrders.add({ token: payload.lookupToken, number: payload.order.number, email: payload.order.guestEmail ?? request.email });
      setPlaced(payload.order.number);
      navigate(`/order-status?token=${encodeURIComponent(payload.lookupToken)}`, { state: { placed: true } });
      void client.refetchQueries({ include: [GuestCartPageDocument] }); // the header's count, afterwards
    } else {
      await refetch();
    }
  };

  const byField = errorsByField(errors);
  const formMessage = messageFor(byField, '') ?? messageFor(byField, 'idempotencyKey') ?? messageFor(byField, 'cartToken');
  const emailMessage = messageFor(byField, 'email');
  return (
    <>
      <PageTitle>Checkout</PageTitle>
      {items.length === 0 ? (
        <p>
          Your cart is empty. <Link to="/products">Find something</Link>
        </p>
      ) : (
        <div className="checkout">
          <form onSubmit={submit} aria-label="Guest checkout">
            <p>
              Checking out as a guest. <Link to={`/signin?next=${encodeURIComponent('/checkout')}`}>Sign in</Link> instead?
            </p>
            <div className="field">
              <label htmlFor="guest-email">Email</label>
              <input
                id="guest-email"
                type="email"
                value={email}
                required
                autoComplete="email"
                onChange={(e) => setEmail(e.target.value)}
                aria-describedby="guest-email-error"
                aria-invalid={emailMessage ? true : undefined}
              />
              <FieldError id="guest-email-error" message={emailMessage} />
            </div>
            <AddressFields address={address} onChange={setAddress} byField={byField} />
            {formMessage && (
              <div className="field-error" role="alert" data-testid="checkout-error">
                <p>{formMessage}</p>
                <Link to="/cart">Change your cart</Link>
              </div>
            )}
            {error && <ErrorState what="Checkout" error={error} />}
            <button type="submit" className="primary" disabled={loading || repricing || unavailableLines(items).length > 0}>
              {loading ? 'Placing your order…' : 'Place order'}
            </button>
          </form>
          <aside aria-label="Order summary" className="summary">
            <h2>Summary</h2>
            <ul>
              {items.map((line) => (
                <li key={line.id}>
                  {line.quantity} × {line.product?.name ?? 'Unavailable product'} <Money value={line.lineTotal} />
                </li>
              ))}
            </ul>
            {cart && <Breakdown cost={cart.cost} />}
          </aside>
        </div>
      )}
    </>
  );
}
