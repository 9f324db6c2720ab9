// The cart: change quantities, remove lines, totals; each userError next to the line it is about.
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link } from 'react-router-dom';
import { CartPageDocument, RemoveFromCartDocument, UpdateCartItemDocument, type CartPageQuery } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, parseQuantity, stepQuantity, unavailableLines, type UserErrorLike } from '../lib/cart';

type Line = CartPageQuery['cart']['items'][number];

function CartLine({ line }: { line: Line }) {
  const [text, setText] = useState(String(line.quantity));
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [update, updating] = useMutation(UpdateCartItemDocument);
  const [remove, removing] = useMutation(RemoveFromCartDocument, { refetchQueries: [CartPageDocument] });
  const productId = line.product?.id;
  useEffect(() => setText(String(line.quantity)), [line.quantity]);
  const errorId = `line-error-${line.id}`;

  const setQuantity = async (quantity: number) => {
    if (!productId) return;
    const result = await update({ variables: { input: { productId, quantity } } }).catch(() => null);
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
      <button
        type="button"
        className="link-button"
        disabled={removing.loading || !productId}
        onClick={() => productId && remove({ variables: { input: { productId } } })}
      >
        Remove<span className="visually-hidden"> {name}</span>
      </button>
      <FieldError id={errorId} message={message} />
    </li>
  );
}

export function CartPage() {
  const { data, loading, error, refetch } = useQuery(CartPageDocument, { fetchPolicy: 'cache-and-network' });
  if (loading && !data) return <Loading what="Loading your cart" />;
  if (error && !data) return <ErrorState error={error} retry={() => refetch()} />;
  const cart = data!.cart;
  const blocked = unavailableLines(cart.items);
  return (
    <>
      <PageTitle>Your cart</PageTitle>
      {cart.items.length === 0 ? (
        <p>
          Your cart is empty. <Link to="/products">Find something</Link>
        </p>
      ) : (
        <>
          <ul className="cart-lines" aria-label="Cart lines">
            {cart.items.map((line) => (
              <CartLine key={line.id} line={line} />
            ))}
          </ul>
          <dl className="totals">
            <dt>Items</dt>
            <dd data-testid="cart-quantity">{cart.totalQuantity}</dd>
            <dt>Subtotal</dt>
            <dd data-testid="cart-subtotal">
              <Money value={cart.subtotal} />
            </dd>
          </dl>
          {blocked.length > 0 ? (
            <p role="alert">Some lines cannot be ordered as they are: change or remove them to check out.</p>
          ) : (
            <Link className="button primary" to="/checkout">
              Check out
            </Link>
          )}
        </>
      )}
    </>
  );
}
