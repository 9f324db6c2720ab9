// Checkout: the address form and "Place order". One idempotency key per attempt (lib/checkoutAttempt),
// so a double click or a retry after a lost response never orders twice; out of stock and an
// empty cart come back as userErrors and are shown over the form, with the cart refreshed.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link, useNavigate } from 'react-router-dom';
import { AccountPageDocument, CartPageDocument, CheckoutDocument, type ShippingAddressInput } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, unavailableLines, type UserErrorLike } from '../lib/cart';
import { attemptKeys } from '../lib/checkoutAttempt';

const EMPTY: ShippingAddressInput = { name: '', line1: '', line2: '', city: '', region: '', postalCode: '', country: '', phone: '' };
const FIELDS: Array<{ key: keyof ShippingAddressInput; label: string; required: boolean; autoComplete: string }> = [
  { key: 'name', label: 'Full name', required: true, autoComplete: 'name' },
  { key: 'line1', label: 'Address line 1', required: true, autoComplete: 'address-line1' },
  { key: 'line2', label: 'Address line 2', required: false, autoComplete: 'address-line2' },
  { key: 'city', label: 'City', required: true, autoComplete: 'address-level2' },
  { key: 'region', label: 'Region', required: false, autoComplete: 'address-level1' },
  { key: 'postalCode', label: 'Postal code', required: true, autoComplete: 'postal-code' },
  { key: 'country', label: 'Country (2 letters)', required: true, autoComplete: 'country' },
  { key: 'phone', label: 'Phone', required: false, autoComplete: 'tel' },
];

/** The address as the API takes it: optional fields left empty become null. */
function toInput(address: ShippingAddressInput): ShippingAddressInput {
  const out: ShippingAddressInput = { ...address };
  for (const { key, required } of FIELDS) {
    const value = (address[key] ?? '').trim();
    (out as unknown as Record<string, string | null>)[key] = value === '' && !required ? null : value;
  }
  return out;
}

export function CheckoutPage() {
  const navigate = useNavigate();
  const cart = useQuery(CartPageDocument, { fetchPolicy: 'cache-and-network' });
  const account = useQuery(AccountPageDocument);
  const [address, setAddress] = useState<ShippingAddressInput>(EMPTY);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const keys = useRef(attemptKeys()).current;
  const [checkout, { loading, error }] = useMutation(CheckoutDocument);

  const saved = account.data?.me?.addresses.find((a) => a.isDefault) ?? account.data?.me?.addresses[0];
  useEffect(() => {
    if (saved) {
      setAddress((current) =>
        current === EMPTY
          ? { name: saved.name, line1: saved.line1, line2: saved.line2 ?? '', city: saved.city, region: saved.region ?? '', postalCode: saved.postalCode, country: saved.country, phone: saved.phone ?? '' }
          : current,
      );
    }
  }, [saved]);

  if (cart.loading && !cart.data) return <Loading what="Loading your cart" />;
  if (cart.error && !cart.data) return <ErrorState error={cart.error} retry={() => cart.refetch()} />;
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
      await cart.refetch();
      navigate(`/orders/${encodeURIComponent(payload.order.number)}`, { state: { placed: true } });
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
            <fieldset>
              <legend>Shipping address</legend>
              {FIELDS.map(({ key, label, required, autoComplete }) => {
                const message = messageFor(byField, `shippingAddress.${key}`);
                return (
                  <div className="field" key={key}>
                    <label htmlFor={`addr-${key}`}>
                      {label}
                      {!required && <span className="muted"> (optional)</span>}
                    </label>
                    <input
                      id={`addr-${key}`}
                      value={address[key] ?? ''}
                      required={required}
                      autoComplete={autoComplete}
                      onChange={(e) => setAddress({ ...address, [key]: e.target.value })}
                      aria-describedby={`addr-${key}-error`}
                      aria-invalid={message ? true : undefined}
                    />
                    <FieldError id={`addr-${key}-error`} message={message} />
                  </div>
                );
              })}
            </fieldset>
            {formMessage && (
              <div className="field-error" role="alert" data-testid="checkout-error">
                <p>{formMessage}</p>
                {outOfStock && <Link to="/cart">Change your cart</Link>}
              </div>
            )}
            {error && <ErrorState error={error} />}
            <button type="submit" className="primary" disabled={loading || unavailableLines(items).length > 0}>
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
            <p>
              Subtotal <Money value={cart.data?.cart.subtotal} />
            </p>
          </aside>
        </div>
      )}
    </>
  );
}
