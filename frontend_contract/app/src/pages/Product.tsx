import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { AddToCartDocument, CartPageDocument, ProductDetailBySkuDocument } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, parseQuantity } from '../lib/cart';
import { useUser } from '../lib/shop';

export function ProductPage() {
  const { sku = '' } = useParams();
  const user = useUser();
  const navigate = useNavigate();
  const { data, loading, error, refetch } = useQuery(ProductDetailBySkuDocument, { variables: { sku } });
  const [quantity, setQuantity] = useState('1');
  // The cart may be created by this first add (a new id): refetch it rather than trust the cache's.
  const [add, added] = useMutation(AddToCartDocument, { refetchQueries: [CartPageDocument] });
  const [message, setMessage] = useState<string | null>(null);

  if (loading) return <Loading what="Loading product" />;
  if (error) return <ErrorState error={error} retry={() => refetch()} />;
  const product = data?.product;
  if (!product) return <p role="alert">There is no product {sku}.</p>;

  const errors = errorsByField(added.data?.addToCart.userErrors ?? []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!user) {
      navigate(`/signin?next=${encodeURIComponent(`/p/${sku}`)}`);
      return;
    }
    const q = parseQuantity(quantity);
    if (q === null) {
      setMessage('Enter a quantity from 1 to 99.');
      return;
    }
    setMessage(null);
    const result = await add({ variables: { input: { productId: product.id, quantity: q } } }).catch(() => null);
    if (result?.data?.addToCart.userErrors.length === 0) setMessage(`Added ${q} to your cart.`);
  };
  const quantityError = messageFor(errors, 'quantity') ?? messageFor(errors, '') ?? messageFor(errors, 'productId');
  return (
    <article className="product-detail">
      <p className="breadcrumbs">
        <Link to="/products">Products</Link>
        {product.category && (
          <>
            {' › '}
            <Link to={`/products?category=${encodeURIComponent(product.category.slug)}`}>{product.category.name}</Link>
          </>
        )}
      </p>
      <PageTitle>{product.name}</PageTitle>
      <p className="price large" data-testid="product-price">
        <Money value={product.price} />
      </p>
      <p>{product.description}</p>
      <p className="muted">SKU {product.sku}</p>
      {!product.active ? (
        <p role="alert">This product is no longer sold.</p>
      ) : product.inStock ? (
        <p className="in-stock">In stock ({product.stock} available)</p>
      ) : (
        <p className="out-of-stock">Out of stock</p>
      )}
      <form onSubmit={submit} className="add-to-cart">
        <label htmlFor="quantity">Quantity</label>
        <input
          id="quantity"
          type="number"
          min={1}
          max={99}
          value={quantity}
          onChange={(e) => setQuantity(e.target.value)}
          aria-describedby="add-error"
          aria-invalid={quantityError ? true : undefined}
        />
        <button type="submit" disabled={added.loading || !product.active}>
          {added.loading ? 'Adding…' : 'Add to cart'}
        </button>
        <FieldError id="add-error" message={quantityError} />
        {added.error && <ErrorState error={added.error} />}
        {message && (
          <p role="status" className="notice">
            {message} <Link to="/cart">View cart</Link>
          </p>
        )}
      </form>
    </article>
  );
}
