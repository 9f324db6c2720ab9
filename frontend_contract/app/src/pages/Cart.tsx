// The cart (the signed-in user's or a guest's): change quantities, remove lines, where it ships and
// how, a discount code, and the server's priced breakdown; each userError next to what it is about.
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client';
import { Link } from 'react-router-dom';
import { RemoveFromCartDocument, UpdateCartItemDocument } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { Breakdown } from '../components/Breakdown';
import { Region } from '../components/Region';
import { DiscountCodes, ShippingChoice } from '../components/CartPricing';
import { errorsByField, messageFor, parseQuantity, stepQuantity, unavailableLines, type UserErrorLike } from '../lib/cart';
import { cartQueries, useCart, type CartView } from '../lib/useCart';
import { deliveryEstimate } from '../lib/pricing';
import { useHydrated } from '../lib/head';

type Line = CartView['items'][number];
type TokenInput = { cartToken?: string };

const nonZero = (m: { amount: string } | null | undefined) => !!m && !/^-?0*(\.0*)?$/.test(m.amount);

function CartLine({ line, input }: { line: Line; input: TokenInput }) {
  const refetchQueries = cartQueries(!input.cartToken);
  const [text, setText] = useState(String(line.quantity));
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  // Each change reprices the whole cart (discount shares, tax, shipping bands): refetch it.
  const [update, updating] = useMutation(UpdateCartItemDocument, { refetchQueries });
  const [remove, removing] = useMutation(RemoveFromCartDocument, { refetchQueries });
  const productId = line.product?.id;
  useEffect(() => setText(String(line.quantity)), [line.quantity]);
  const errorId = `line-error-${line.id}`;

  const setQuantity = async (quantity: number) => {
    if (!productId) return;
    const result = await update({ variables: { input: { ...input, productId, quantity } } }).catch(() => null);
    const userErrors = result?.data?.updateCartItem.userErrors ?? [];
    setErrors(userErrors);
    setText(String(userErrors.length === 0 ? quantity : line.quantity));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const quantity = parseQuantity(text);
    if (quantity === null) setErrors([{ code: 'INVALID_QUANTITY', field: ['quantity'], message: 'Enter a quantity from 1 to 99.' }]);
    else void setQuantity(quantity);
  };
  const step = (by: 1 | -1) => {
    const next = stepQuantity(line.quantity, by);
    if (next !== null) void setQuantity(next);
  };
  const byField = errorsByField(errors);
  const message = messageFor(byField, 'quantity') ?? messageFor(byField, '') ?? messageFor(byField, 'productId');
  const name = line.product?.name ?? 'A product no longer in the catalog';
  return (
    <li className="cart-line" data-testid="cart-line">
      <div className="line-name">
        {line.variant.image && (
          <img
            className="line-image"
            src={line.variant.image.url}
            srcSet={line.variant.image.srcset}
            sizes="64px"
            width={64}
            height={64}
            alt="" // the product's name is beside it
            loading="lazy"
            data-testid="line-image"
          />
        )}
        {line.product ? <Link to={`/p/${encodeURIComponent(line.product.sku)}`}>{name}</Link> : name}
        {!line.available && <p className="out-of-stock">Not available in this quantity</p>}
      </div>
      <span className="unit">
        <Money value={line.unitPrice} /> each
      </span>
      <form onSubmit={submit} className="qty" aria-label={`Change the quantity of ${name}`}>
        <button type="button" onClick={() => step(-1)} aria-label={`One less ${name}`} disabled={updating.loading || line.quantity <= 1}>
          −
        </button>
        <label htmlFor={`qty-${line.id}`} className="visually-hidden">
          Quantity of {name}
        </label>
        <input
          id={`qty-${line.id}`}
          type="number"
          min={1}
          max={99}
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-describedby={errorId}
          aria-invalid={message ? true : undefined}
        />
        <button type="button" onClick={() => step(1)} aria-label={`One more ${name}`} disabled={updating.loading}>
          +
        </button>
        <button type="submit" disabled={updating.loading}>
          Update
        </button>
      </form>
      <span className="line-total" data-testid="line-total">
        <Money value={line.lineTotal} />
      </span>
      <span className="line-pricing">
        {nonZero(line.discount) && (
          <span className="notice line-discount" data-testid="line-discount">
            {' '}
            −<Money value={line.discount} />
          </span>
        )}
        {nonZero(line.tax) && (
          <span className="muted line-tax" data-testid="line-tax">
            {' '}
            tax <Money value={line.tax} />
          </span>
        )}
      </span>
      <button
        type="button"
        className="link-button"
        disabled={removing.loading || !productId}
        onClick={() => productId && remove({ variables: { input: { ...input, productId } } })}
      >
        Remove<span className="visually-hidden"> {name}</span>
      </button>
      <FieldError id={errorId} message={message} />
    </li>
  );
}

const CART_HEAD = { title: 'Your cart', description: 'Your Shopgraph cart: what you picked, priced with shipping and discounts.', path: '/cart' };

export function CartPage() {
  const { cart, signedIn, loading, error, refetch, input } = useCart();
  const hydrated = useHydrated();
  // Whose cart it is lives in the browser (session, guest token): the server sends the page around it.
  if (!hydrated || loading) {
    return (
      <>
        <PageTitle head={CART_HEAD}>Your cart</PageTitle>
        <Loading what="Loading your cart" />
      </>
    );
  }
  if (error && !cart) {
    return (
      <>
        <PageTitle head={CART_HEAD}>Your cart</PageTitle>
        <ErrorState what="Cart" error={error} retry={() => refetch()} />
      </>
    );
  }
  if (!cart || cart.items.length === 0) {
    return (
      <>
        <PageTitle head={CART_HEAD}>Your cart</PageTitle>
        <p>
          Your cart is empty. <Link to="/products">Find something</Link>
        </p>
      </>
    );
  }
  const blocked = unavailableLines(cart.items);
  const method = cart.shippingMethod;
  return (
    <>
      <PageTitle head={CART_HEAD}>Your cart</PageTitle>
      <ul className="cart-lines" aria-label="Cart lines">
        {cart.items.map((line) => (
          <CartLine key={line.id} line={line} input={input} />
        ))}
      </ul>
      <div className="cart-pricing">
        <Region what="Shipping">
          <ShippingChoice cart={cart} input={input} />
        </Region>
        <Region what="Discount codes">
          <DiscountCodes cart={cart} input={input} />
        </Region>
      </div>
      <p>
        Items <span data-testid="cart-quantity">{cart.totalQuantity}</span>
      </p>
      <Breakdown
        subtotalTestId="cart-subtotal"
        cost={cart.cost}
        shippingLabel={method ? `${method.name}, ${deliveryEstimate(method.minDays, method.maxDays)}` : null}
      />
      {blocked.length > 0 ? (
        <p role="alert">Some lines cannot be ordered as they are: change or remove them to check out.</p>
      ) : signedIn ? (
        <Link className="button primary" to="/checkout">
          Check out
        </Link>
      ) : (
        <p>
          <Link className="button primary" to={`/signin?next=${encodeURIComponent('/checkout')}`} data-testid="guest-checkout">
            Sign in to check out
          </Link>{' '}
          <span className="muted">
            Your cart comes with you. New here? <Link to={`/signup?next=${encodeURIComponent('/checkout')}`}>Create an account</Link>
          </span>{' '}
          <Link className="button" to="/checkout/guest" data-testid="guest-checkout-email">
            Check out as a guest
          </Link>
        </p>
      )}
    </>
  );
}
