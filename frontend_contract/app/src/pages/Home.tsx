import { useQuery } from '@apollo/client';
import { Link } from 'react-router-dom';
import { CategoryNavDocument, ProductListDocument } from '../gql/graphql';
import { ErrorState, Loading, PageTitle } from '../components/ui';
import { ProductGrid } from '../components/ProductGrid';
import { DEFAULT_DESCRIPTION, SITE_NAME } from '../lib/head';

export function HomePage() {
  const categories = useQuery(CategoryNavDocument);
  const featured = useQuery(ProductListDocument, { variables: { first: 8, sortKey: 'NEWEST', filter: { inStock: true } } });
  return (
    <>
      <PageTitle head={{ title: SITE_NAME, description: DEFAULT_DESCRIPTION, path: '/' }}>Welcome to Shopgraph</PageTitle>
      <section aria-labelledby="cat-heading">
        <h2 id="cat-heading">Shop by category</h2>
        {categories.loading && <Loading what="Loading categories" />}
        {categories.error && <ErrorState what="The category list" error={categories.error} retry={() => categories.refetch()} />}
        <ul className="category-tiles">
          {categories.data?.categories.map((c) => (
            <li key={c.id}>
              <Link to={`/products?category=${encodeURIComponent(c.slug)}`}>{c.name}</Link>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="new-heading">
        <h2 id="new-heading">New arrivals</h2>
        {featured.loading && <Loading what="Loading products" />}
        {featured.error && <ErrorState what="The catalog" error={featured.error} retry={() => featured.refetch()} />}
        {featured.data && <ProductGrid label="New arrivals" products={featured.data.products.edges.map((e) => e.node)} />}
        <p>
          <Link to="/products">Browse all products</Link>
        </p>
      </section>
    </>
  );
}
