// Product administration: create, edit (name, price, description), archive, adjust stock.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import {
  AdminAdjustStockDocument,
  AdminArchiveProductDocument,
  AdminCreateProductDocument,
  AdminProductsDocument,
  AdminUpdateProductDocument,
  CategoryNavDocument,
  type AdminProductsQuery,
} from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle } from '../components/ui';
import { errorsByField, messageFor, type UserErrorLike } from '../lib/cart';
import { parsePriceInput } from '../lib/money';

type Product = AdminProductsQuery['products']['edges'][number]['node'];

function CreateProduct() {
  const categories = useQuery(CategoryNavDocument);
  const [form, setForm] = useState({ sku: '', name: '', description: '', price: '', stock: '0', weight: '', categoryId: '' });
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [created, setCreated] = useState<string | null>(null);
  const [create, { loading, error }] = useMutation(AdminCreateProductDocument, { refetchQueries: [AdminProductsDocument] });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const price = parsePriceInput(form.price);
    const stock = Number.parseInt(form.stock, 10);
    const local: UserErrorLike[] = [];
    if (price === null) local.push({ code: 'INVALID_PRICE', field: ['price'], message: 'Enter a price like 19.99.' });
    if (!Number.isInteger(stock) || stock < 0) local.push({ code: 'INVALID', field: ['stock'], message: 'Enter a whole number of 0 or more.' });
    // Shipping weight in grams (BY_WEIGHT rates); empty: the catalog's default.
    const weightGrams = form.weight.trim() === '' ? null : Number(form.weight.trim());
    if (weightGrams !== null && !(Number.isInteger(weightGrams) && weightGrams >= 0)) {
      local.push({ code: 'INVALID', field: ['weightGrams'], message: 'Enter a weight in whole grams.' });
    }
    if (local.length > 0 || price === null) return setErrors(local);
    const input = { sku: form.sku, name: form.name, description: form.description, price, stock, weightGrams, categoryId: form.categoryId || null };
    const result = await create({ variables: { input } }).catch(() => null);
    const payload = result?.data?.createProduct;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.product) {
      setCreated(payload.product.name);
      setForm({ sku: '', name: '', description: '', price: '', stock: '0', weight: '', categoryId: form.categoryId });
    }
  };
  const byField = errorsByField(errors);
  const text = (key: 'sku' | 'name' | 'description' | 'price' | 'stock' | 'weight', label: string) => (
    <div className="field">
      <label htmlFor={`new-product-${key}`}>{label}</label>
      <input
        id={`new-product-${key}`}
        value={form[key]}
        inputMode={key === 'price' ? 'decimal' : key === 'stock' || key === 'weight' ? 'numeric' : undefined}
        onChange={(e) => setForm({ ...form, [key]: e.target.value })}
        aria-describedby={`new-product-${key}-error`}
      />
      <FieldError id={`new-product-${key}-error`} message={messageFor(byField, key === 'weight' ? 'weightGrams' : key)} />
    </div>
  );
  return (
    <form onSubmit={submit} aria-labelledby="create-heading" className="create-product">
      <h2 id="create-heading">New product</h2>
      {text('sku', 'SKU')}
      {text('name', 'Name')}
      {text('description', 'Description')}
      {text('price', 'Price')}
      {text('stock', 'Stock')}
      {text('weight', 'Weight in grams (optional)')}
      <div className="field">
        <label htmlFor="new-product-category">Category</label>
        <select id="new-product-category" value={form.categoryId} onChange={(e) => setForm({ ...form, categoryId: e.target.value })}>
          <option value="">None</option>
          {categories.data?.categories.map((c) => (
            <option key={c.id} value={c.id}>
              {c.name}
            </option>
          ))}
        </select>
      </div>
      <FieldError id="new-product-error" message={messageFor(byField, '')} />
      {error && <ErrorState error={error} />}
      <button type="submit" disabled={loading}>
        Create product
      </button>
      {created && (
        <p role="status" className="notice">
          Created {created}.
        </p>
      )}
    </form>
  );
}

function ProductRow({ product }: { product: Product }) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(product.name);
  const [price, setPrice] = useState(product.price.amount);
  const [delta, setDelta] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [update, updating] = useMutation(AdminUpdateProductDocument);
  const [archive, archiving] = useMutation(AdminArchiveProductDocument);
  const [adjust, adjusting] = useMutation(AdminAdjustStockDocument);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const decimal = parsePriceInput(price);
    if (decimal === null) return setErrors([{ code: 'INVALID_PRICE', field: ['price'], message: 'Enter a price like 19.99.' }]);
    const result = await update({ variables: { input: { id: product.id, name, price: decimal } } }).catch(() => null);
    const userErrors = result?.data?.updateProduct.userErrors ?? [];
    setErrors(userErrors);
    if (result && userErrors.length === 0) setEditing(false);
  };
  const adjustStock = async (e: FormEvent) => {
    e.preventDefault();
    const by = Number.parseInt(delta, 10);
    if (!Number.isInteger(by) || by === 0) return setErrors([{ code: 'INVALID', field: ['delta'], message: 'Enter a change like 5 or -2.' }]);
    const result = await adjust({ variables: { input: { productId: product.id, delta: by } } }).catch(() => null);
    const userErrors = result?.data?.adjustStock.userErrors ?? [];
    setErrors(userErrors);
    if (result && userErrors.length === 0) setDelta('');
  };
  const byField = errorsByField(errors);
  const rowError = [
    messageFor(byField, ''),
    messageFor(byField, 'name'),
    messageFor(byField, 'price'),
    messageFor(byField, 'delta'),
    messageFor(byField, 'id'),
    messageFor(byField, 'productId'),
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <tr data-sku={product.sku}>
      <td>{product.sku}</td>
      <td>
        {editing ? (
          <form onSubmit={save} className="inline-form" aria-label={`Edit ${product.name}`}>
            <label htmlFor={`name-${product.id}`} className="visually-hidden">
              Name
            </label>
            <input id={`name-${product.id}`} value={name} onChange={(e) => setName(e.target.value)} />
            <label htmlFor={`price-${product.id}`} className="visually-hidden">
              Price
            </label>
            <input id={`price-${product.id}`} value={price} inputMode="decimal" onChange={(e) => setPrice(e.target.value)} size={8} />
            <button type="submit" disabled={updating.loading}>
              Save
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <>
            {product.name} {!product.active && <span className="badge">Archived</span>}
          </>
        )}
      </td>
      <td>
        <Money value={product.price} />
      </td>
      <td data-testid="stock">{product.stock}</td>
      <td>
        <form onSubmit={adjustStock} className="inline-form" aria-label={`Adjust stock of ${product.name}`}>
          <label htmlFor={`delta-${product.id}`} className="visually-hidden">
            Stock change for {product.name}
          </label>
          <input id={`delta-${product.id}`} value={delta} onChange={(e) => setDelta(e.target.value)} size={4} placeholder="±" />
          <button type="submit" disabled={adjusting.loading}>
            Adjust
          </button>
        </form>
      </td>
      <td>
        {!editing && (
          <button type="button" onClick={() => setEditing(true)} aria-label={`Edit ${product.name}`}>
            Edit
          </button>
        )}
        {product.active && (
          <button
            type="button"
            disabled={archiving.loading}
            onClick={() => archive({ variables: { input: { id: product.id } } })}
            aria-label={`Archive ${product.name}`}
          >
            Archive
          </button>
        )}
        {rowError && (
          <p className="field-error" role="alert">
            {rowError}
          </p>
        )}
      </td>
    </tr>
  );
}

export function ProductsAdmin() {
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  const [after, setAfter] = useState<string | null>(null);
  const { data, loading, error, refetch } = useQuery(AdminProductsDocument, {
    variables: { first: 25, after, search: query || null, filter: { includeArchived: true } },
  });
  return (
    <>
      <PageTitle>Products</PageTitle>
      <CreateProduct />
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setAfter(null);
          setQuery(search.trim());
        }}
      >
        <label htmlFor="admin-search">Find products</label> <input id="admin-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />{' '}
        <button type="submit">Find</button>
      </form>
      {loading && <Loading what="Loading products" />}
      {error && <ErrorState what="The product list" error={error} retry={() => refetch()} />}
      {data && (
        <>
          <p role="status">{data.products.totalCount} products</p>
          <div className="table-scroll" role="region" aria-label="Products" tabIndex={0}>
            <table className="products-admin">
              <thead>
                <tr>
                  <th scope="col">SKU</th>
                  <th scope="col">Name</th>
                  <th scope="col">Price</th>
                  <th scope="col">Stock</th>
                  <th scope="col">Adjust stock</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.products.edges.map(({ node }) => (
                  <ProductRow key={node.id} product={node} />
                ))}
              </tbody>
            </table>
          </div>
          <nav aria-label="Pages" className="pager">
            {after && (
              <button type="button" onClick={() => setAfter(null)}>
                First page
              </button>
            )}
            {data.products.pageInfo.hasNextPage && (
              <button type="button" onClick={() => setAfter(data.products.pageInfo.endCursor)}>
                Next page
              </button>
            )}
          </nav>
        </>
      )}
    </>
  );
}
