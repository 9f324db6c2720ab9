// The cart's pricing controls: where it ships (country, region), the shipping method with its
// delivery estimate, and a discount code with its effect or the reason it does not apply.
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client';
import { ApplyDiscountCodeDocument, RemoveDiscountCodeDocument, SetCartDestinationDocument, SetCartShippingMethodDocument } from '../gql/graphql';
import { cleanCountry, deliveryEstimate, refusalText } from '../lib/pricing';
import { errorsByField, messageFor, type UserErrorLike } from '../lib/cart';
import type { CartView } from '../lib/useCart';
import { FieldError, Money } from './ui';

type TokenInput = { cartToken?: string };

/** `destination` false: the page sets the destination itself (checkout: from the address). */
export function ShippingChoice({ cart, input, destination: withDestination = true }: { cart: CartView; input: TokenInput; destination?: boolean }) {
  const [country, setCountry] = useState(cart.destination?.country ?? '');
  const [region, setRegion] = useState(cart.destination?.region ?? '');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [setDestination, destination] = useMutation(SetCartDestinationDocument);
  const [setMethod, method] = useMutation(SetCartShippingMethodDocument);
  useEffect(() => {
    setCountry(cart.destination?.country ?? '');
    setRegion(cart.destination?.region ?? '');
  }, [cart.destination?.country, cart.destination?.region]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const code = cleanCountry(country);
    if (!code) {
      setErrors([{ code: 'INVALID', field: ['country'], message: 'Enter a two-letter country code, e.g. GB.' }]);
      return;
    }
    const result = await setDestination({ variables: { input: { ...input, country: code, region: region.trim() || null } } }).catch(() => null);
    setErrors(result?.data?.setCartDestination.userErrors ?? []);
  };
  const choose = async (shippingMethodId: string) => {
    const result = await setMethod({ variables: { input: { ...input, shippingMethodId } } }).catch(() => null);
    setErrors(result?.data?.setCartShippingMethod.userErrors ?? []);
  };
  const byField = errorsByField(errors);
  return (
    <section className="shipping-choice" aria-labelledby="shipping-heading">
      <h2 id="shipping-heading">Shipping</h2>
      {withDestination && (
        <form onSubmit={submit} className="destination" aria-label="Shipping destination">
          <div className="field">
            <label htmlFor="dest-country">Country (2 letters)</label>
            <input
              id="dest-country"
              value={country}
              maxLength={2}
              autoComplete="country"
              onChange={(e) => setCountry(e.target.value)}
              aria-describedby="dest-error"
            />
          </div>
          <div className="field">
            <label htmlFor="dest-region">
              Region <span className="muted">(optional)</span>
            </label>
            <input id="dest-region" value={region} autoComplete="address-level1" onChange={(e) => setRegion(e.target.value)} aria-describedby="dest-error" />
          </div>
          <button type="submit" disabled={destination.loading}>
            {destination.loading ? 'Updating…' : 'Update destination'}
          </button>
          <FieldError id="dest-error" message={messageFor(byField, 'country') ?? messageFor(byField, 'region') ?? messageFor(byField, '')} />
        </form>
      )}
      <FieldError id="method-error" message={messageFor(byField, 'shippingMethodId')} />
      {cart.destination && cart.shippingOptions.length === 0 && <p className="muted">No shipping method delivers there: shipping is free.</p>}
      {cart.shippingOptions.length > 0 && (
        <fieldset className="shipping-options" disabled={method.loading}>
          <legend>Shipping method</legend>
          {cart.shippingOptions.map((option) => (
            <label key={option.id} htmlFor={`ship-${option.id}`} className={option.selected ? 'chosen' : undefined} data-testid="shipping-option">
              <input id={`ship-${option.id}`} type="radio" name="shipping-method" checked={option.selected} onChange={() => void choose(option.id)} />
              {option.name} — <Money value={option.price} /> <span className="muted">({deliveryEstimate(option.minDays, option.maxDays)})</span>
            </label>
          ))}
        </fieldset>
      )}
    </section>
  );
}

export function DiscountCodes({ cart, input }: { cart: CartView; input: TokenInput }) {
  const [code, setCode] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [apply, applying] = useMutation(ApplyDiscountCodeDocument);
  const [remove, removing] = useMutation(RemoveDiscountCodeDocument);
  const entered = cart.discountCodes.filter((d) => !d.automatic);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!code.trim()) return;
    const result = await apply({ variables: { input: { ...input, code: code.trim() } } }).catch(() => null);
    const userErrors = result?.data?.applyDiscountCode.userErrors ?? [];
    setErrors(userErrors);
    if (result?.data && userErrors.length === 0) setCode('');
  };
  const drop = async () => {
    const result = await remove({ variables: { input: { ...input } } }).catch(() => null);
    setErrors(result?.data?.removeDiscountCode.userErrors ?? []);
  };
  const byField = errorsByField(errors);
  return (
    <section className="discounts" aria-labelledby="discount-heading">
      <h2 id="discount-heading">Discounts</h2>
      {cart.discountCodes.length > 0 && (
        <ul>
          {cart.discountCodes.map((d) => (
            <li key={`${d.code ?? ''}-${d.title}`} data-testid="discount-code">
              <strong>{d.code ?? d.title}</strong>
              {d.code && d.title && d.title !== d.code ? <span className="muted"> {d.title}</span> : null}{' '}
              {d.applicable ? (
                <span className="notice">
                  −<Money value={d.amount} />
                  {d.kind === 'FREE_SHIPPING' ? ' on shipping' : ''}
                </span>
              ) : (
                <span className="out-of-stock" data-testid="discount-reason">
                  {refusalText(d.reason)}
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
      {entered.length > 0 && (
        <button type="button" className="link-button" onClick={() => void drop()} disabled={removing.loading}>
          Remove code
        </button>
      )}
      <form onSubmit={submit} className="discount-form" aria-label="Apply a discount code">
        <label htmlFor="discount-code">Discount code</label>
        <input id="discount-code" value={code} onChange={(e) => setCode(e.target.value)} autoComplete="off" aria-describedby="discount-error" />
        <button type="submit" disabled={applying.loading}>
          {applying.loading ? 'Applying…' : 'Apply'}
        </button>
        <FieldError id="discount-error" message={messageFor(byField, 'code') ?? messageFor(byField, '')} />
      </form>
    </section>
  );
}
