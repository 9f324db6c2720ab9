import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link, useParams } from 'react-router-dom';
import { AddToCartDocument, CreateGuestCartDocument, ProductDetailBySkuDocument } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, parseQuantity } from '../lib/cart';
import { useShop } from '../lib/shop';
import { cartQueries } from '../lib/useCart';
import { guestCart, isDeadToken } from '../lib/guestCart';
import { kindMessage } from '../lib/errors';
import { isOffline, OFFLINE_CHANGE } from '../lib/offline';
import { NotFound } from '../components/NotFound';
import type { Head } from '../lib/head';
import type { ProductDetailBySkuQuery } from '../gql/graphql';

type Product = NonNullable<ProductDetailBySkuQuery['product']>;

/** The product's head: its description, first image and schema.org Product (offers per variant). */
function productHead(product: Product): Head {
  const path = `/p/${encodeURIComponent(product.sku)}`;
  const images = [...product.images.map((i) => i.url), ...product.variants.flatMap((v) => (v.image ? [v.image.url] : []))];
  const offer = (sku: string, price: Product['price'], inStock: boolean) => ({
    '@type': 'Offer',
    sku,
    price: price.amount,
    priceCurrency: price.currencyCode,
    availability: `https://schema.org/${product.active && inStock ? 'InStock' : 'OutOfStock'}`,
  });
  return {
    title: product.name,
    description: product.description.length > 160 ? `${product.description.slice(0, 157)}…` : product.description,
    path,
    image: images[0] ?? null,
    type: 'product',
    jsonLd: {
      '@context': 'https://schema.org',
      '@type': 'Product',
      name: product.name,
      sku: product.sku,
      description: product.description,
      ...(images.length > 0 ? { image: [...new Set(images)] } : {}),
      ...(product.category ? { category: product.category.name } : {}),
      offers: product.variants.length > 1 ? product.variants.map((v) => offer(v.sku, v.price, v.inStock)) : offer(product.sku, product.price, product.inStock),
    },
  };
}

export function ProductPage() {
  const { sku = '' } = useParams();
  const { session } = useShop();
  const { data, loading, error, refetch } = useQuery(ProductDetailBySkuDocument, { variables: { sku } });
  const [quantity, setQuantity] = useState('1');
  const [chosen, setChosen] = useState<Record<string, string>>({});
  // The cart may be created by this first add (a new id): each add refetches it (submit) rather than
  // trust the cache's.
  const [add, added] = useMutation(AddToCartDocument);
  const [createGuestCart] = useMutation(CreateGuestCartDocument);
  const [message, setMessage] = useState<string | null>(null);
  const [offline, setOffline] = useState(false);

  if (loading) return <Loading what="Loading product" />;
  if (error) return <ErrorState what="This product" error={error} retry={() => refetch()} />;
  const product = data?.product;
  if (!product) return <NotFound what={`There is no product ${sku}.`} />;

  // The variant whose option values are the chosen ones (unchosen options: the first on sale's).
  const first = product.variants.find((v) => v.inStock) ?? product.variants[0];
  const wanted = (name: string) => chosen[name] ?? first?.selectedOptions.find((o) => o.name === name)?.value ?? '';
  const variant = product.variants.find((v) => v.selectedOptions.every((o) => o.value === wanted(o.name))) ?? null;
  const image = variant?.image ?? product.images[0] ?? null;
  const price = variant?.price ?? product.price;
  const stock = variant ? variant.stock : product.stock;
  const errors = errorsByField(added.data?.addToCart.userErrors ?? []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setOffline(isOffline()); // the cart changes only online: refused at once, never queued
    if (isOffline()) {
      setMessage(null);
      return;
    }
    const q = parseQuantity(quantity);
    if (q === null) {
      setMessage('Enter a quantity from 1 to 99.');
      return;
    }
    setMessage(null);
    if (!variant) {
      setMessage('This combination is not sold.');
      return;
    }
    const line = { productId: product.id, variantId: variant.id, quantity: q };
    // After a reload the session may still be coming back from its cookie: the account's cart or a
    // guest cart is decided once it has.
    await session.settled();
    const current = session.user;
    const refetchQueries = cartQueries(current !== null);
    // Signed out: into a guest cart (created on the first add), by its token.
    const token = async () => (current ? null : guestCart.ensure(async () => (await createGuestCart()).data?.createGuestCart.cartToken ?? null));
    let cartToken = await token().catch(() => null);
    if (!current && !cartToken) {
      setMessage(kindMessage(null, 'Cart'));
      return;
    }
    let result = await add({ variables: { input: cartToken ? { ...line, cartToken } : line }, refetchQueries }).catch(() => null);
    if (!current && result?.data && isDeadToken(result.data.addToCart.userErrors)) {
      guestCart.forget(); // expired or merged elsewhere: start a new guest cart once
      cartToken = await token().catch(() => null);
      if (cartToken) result = await add({ variables: { input: { ...line, cartToken } }, refetchQueries }).catch(() => null);
    }
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
      <PageTitle head={productHead(product)}>{product.name}</PageTitle>
      {image && (
        <img
          className="product-image"
          src={image.url}
          srcSet={image.srcset}
          sizes="(max-width: 700px) 100vw, 480px"
          alt={image.altText || product.name}
          width={480}
          height={480}
          data-testid="product-image"
        />
      )}
      <p className="price large" data-testid="product-price">
        <Money value={price} />
      </p>
      {product.options.map((option) => (
        <fieldset key={option.name} className="variant-picker">
          <legend>{option.name}</legend>
          {option.values.map((value) => {
            const id = `opt-${option.name}-${value}`;
            return (
              <label key={value} htmlFor={id} className={wanted(option.name) === value ? 'chosen' : undefined}>
                <input
                  id={id}
                  type="radio"
                  name={option.name}
                  value={value}
                  checked={wanted(option.name) === value}
                  onChange={() => setChosen({ ...chosen, [option.name]: value })}
                />
                {value}
              </label>
            );
          })}
        </fieldset>
      ))}
      <p>{product.description}</p>
      <p className="muted">SKU {variant?.sku ?? product.sku}</p>
      {!product.active ? (
        <p role="alert">This product is no longer sold.</p>
      ) : !variant ? (
        <p className="out-of-stock">This combination is not sold</p>
      ) : stock > 0 ? (
        <p className="in-stock">In stock ({stock} available)</p>
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
        <button type="submit" disabled={added.loading || !product.active || !variant}>
          {added.loading ? 'Adding…' : 'Add to cart'}
        </button>
        <FieldError id="add-error" message={quantityError} />
        <FieldError id="add-offline" message={offline ? OFFLINE_CHANGE : null} />
        {added.error && <ErrorState what="Cart" error={added.error} />}
        {message && (
          <p role="status" className="notice">
            {message} <Link to="/cart">View cart</Link>
          </p>
        )}
      </form>
    </article>
  );
}
