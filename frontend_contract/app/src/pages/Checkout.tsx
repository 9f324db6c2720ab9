// Checkout: the address form and "Place order". One idempotency key per attempt (lib/checkoutAttempt),
// so a double click or a retry after a lost response never orders twice; out of stock and an
// empty cart come back as userErrors and are shown over the form, with the cart refreshed.
// The cart's destination follows the address's country/region, so the shipping method and the
// breakdown shown beside the form are the ones the order is priced at.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client';
import { Link, useNavigate } from 'react-router-dom';
import { AccountPageDocument, CartPageDocument, CheckoutDocument, SetCartDestinationDocument, type ShippingAddressInput } from '../gql/graphql';
import { AddressFields, EMPTY, toInput } from '../components/AddressFields';
import { Breakdown } from '../components/Breakdown';
import { ShippingChoice } from '../components/CartPricing';
import { cleanCountry, deliveryEstimate, refusalText } from '../lib/pricing';
import { ErrorState, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, unavailableLines, type UserErrorLike } from '../lib/cart';
import { attemptKeys } from '../lib/checkoutAttempt';

export function CheckoutPage() {
  const navigate = useNavigate();
  const cart = useQuery(CartPageDocument, { fetchPolicy: 'cache-and-network' });
  const account = useQuery(AccountPageDocument);
  const [address, setAddress] = useState<ShippingAddressInput>(EMPTY);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const keys = useRef(attemptKeys()).current;
  const client = useApolloClient();
  // Set once the order is placed: the page shows it is opening the order, never the cart that the
  // order has just emptied ("Your cart is empty" flashed before the order page once).
  const [placed, setPlaced] = useState<string | null>(null);
  const [checkout, { loading, error }] = useMutation(CheckoutDocument);
  const [setDestination, settingDestination] = useMutation(SetCartDestinationDocument);
  const destination = cart.data?.cart.destination;
  const country = cleanCountry(address.country ?? '');
  const region = (address.region ?? '').trim() || null;
  // The cart is priced where the order ships: until it is (after a pause in typing), no order.
  // A destination the cart refuses is left to the checkout to report.
  const [refused, setRefused] = useState<string | null>(null);
  const wanted = country ? `${country}|${region ?? ''}` : null;
  const priced = !!destination && destination.country === country && (destination.region ?? null) === region;
  const repricing = settingDestination.loading || (wanted !== null && !!cart.data && !priced && refused !== wanted);
  useEffect(() => {
    if (!country || !wanted || !cart.data || priced || refused === wanted) return;
    const timer = setTimeout(() => {
      void setDestination({ variables: { input: { country, region } } })
        .then((r) => {
          if (!r.data || r.data.setCartDestination.userErrors.length > 0) setRefused(wanted);
        })
        .catch(() => setRefused(wanted));
    }, 400);
    return () => clearTimeout(timer);
  }, [country, region, wanted, priced, refused, cart.data, setDestination]);

  const saved = account.data?.me?.addresses.find((a) => a.isDefault) ?? account.data?.me?.addresses[0];
  useEffect(() => {
    if (saved) {
      setAddress((current) =>
        current === EMPTY
          ? {
              name: saved.name,
              line1: saved.line1,
              line2: saved.line2 ?? '',
              city: saved.city,
              region: saved.region ?? '',
              postalCode: saved.postalCode,
              country: saved.country,
              phone: saved.phone ?? '',
            }
          : current,
      );
    }
  }, [saved]);

  if (placed) return <Loading what={`Order ${placed} is placed. Opening it`} />;
  if (cart.loading && !cart.data) return <Loading what="Loading your cart" />;
  if (cart.error && !cart.data) return <ErrorState what="Cart" error={cart.error} retry={() => cart.refetch()} />;
  const items = cart.data?.cart.items ?? [];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (loading) return;
    const shippingAddress = toInput(address);
    const idempotencyKey = keys.keyFor({ shippingAddress, cart: cart.data?.cart.updatedAt });
    const result = await checkout({ variables: { input: { idempotencyKey, shippingAddress } } }).catch(() => null);
    const payload = result?.data?.checkout;
    if (!payload) return; // network trouble: the same attempt (same key) can be retried safely
    setErrors(payload.userErrors);
    if (payload.order && payload.userErrors.length === 0) {
      keys.finish();
      setPlaced(payload.order.number);
      navigate(`/orders/${encodeURIComponent(payload.order.number)}`, { state: { placed: true } });
      // The header's count, read again once the order page is showing.
      void client.refetchQueries({ include: [CartPageDocument] });
    } else {
      await cart.refetch(); // availability has changed: show it
    }
  };

  const byField = errorsByField(errors);
  const formMessage = messageFor(byField, '') ?? messageFor(byField, 'idempotencyKey');
  const outOfStock = errors.some((e) => e.code === 'OUT_OF_STOCK' || e.code === 'PRODUCT_INACTIVE');
  return (
    <>
      <PageTitle>Checkout</PageTitle>
      {items.length === 0 ? (
        <p>
          Your cart is empty. <Link to="/products">Find something</Link>
        </p>
      ) : (
        <div className="checkout">
          <form onSubmit={submit} aria-label="Shipping address">
            <AddressFields address={address} onChange={setAddress} byField={byField} />
            {formMessage && (
              <div className="field-error" role="alert" data-testid="checkout-error">
                <p>{formMessage}</p>
                {outOfStock && <Link to="/cart">Change your cart</Link>}
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
                  {!line.available && <span className="out-of-stock"> (not available)</span>}
                </li>
              ))}
            </ul>
            {cart.data && (
              <>
                <ShippingChoice cart={cart.data.cart} input={{}} destination={false} />
                {cart.data.cart.shippingMethod && (
                  <p data-testid="checkout-shipping-method">
                    Shipping: {cart.data.cart.shippingMethod.name} (
                    {deliveryEstimate(cart.data.cart.shippingMethod.minDays, cart.data.cart.shippingMethod.maxDays)})
                  </p>
                )}
                {cart.data.cart.discountCodes.map((d) => (
                  <p key={`${d.code ?? ''}-${d.title}`} data-testid="checkout-discount">
                    {d.code ?? d.title}:{' '}
                    {d.applicable ? (
                      <>
                        −<Money value={d.amount} />
                      </>
                    ) : (
                      <span className="out-of-stock">
                        {refusalText(d.reason)} <Link to="/cart">Change it in your cart</Link>
                      </span>
                    )}
                  </p>
                ))}
                <Breakdown cost={cart.data.cart.cost} />
              </>
            )}
          </aside>
        </div>
      )}
    </>
  );
}
