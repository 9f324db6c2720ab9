// Category browse and search: filters, sort and the page cursor all kept in the URL.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useQuery } from '@apollo/client';
import { Link, useSearchParams } from 'react-router-dom';
import { CategoryNavDocument, ProductListDocument } from '../gql/graphql';
import { ErrorState, Loading, PageTitle } from '../components/ui';
import { ProductGrid } from '../components/ProductGrid';
import { SearchFacets } from '../components/SearchFacets';
import { optionFilter, readBrowse, SORTS, writeBrowse, type BrowseState } from '../lib/browseParams';
import { parsePriceInput } from '../lib/money';
import { useStatus, type Head } from '../lib/head';

const PAGE_SIZE = 24;
const SORT_LABELS: Record<string, string> = { '': 'Default', RELEVANCE: 'Relevance', PRICE: 'Price', NAME: 'Name', NEWEST: 'Newest' };

export function BrowsePage() {
  const [params, setParams] = useSearchParams();
  const state = readBrowse(params);
  const categories = useQuery(CategoryNavDocument);
  const category = categories.data?.categories.find((c) => c.slug === state.category);
  const waitingForCategory = state.category !== '' && !categories.data;
  const { data, loading, error, refetch } = useQuery(ProductListDocument, {
    skip: waitingForCategory,
    variables: {
      first: PAGE_SIZE,
      after: state.after || null,
      search: state.q || null,
      filter: {
        categoryId: category?.id ?? null,
        minPrice: state.minPrice || null,
        maxPrice: state.maxPrice || null,
        inStock: state.inStock ? true : null,
        options: optionFilter(state.options),
      },
      sortKey: state.sort || null,
      reverse: state.reverse,
    },
  });

  const [minText, setMinText] = useState(state.minPrice);
  const [maxText, setMaxText] = useState(state.maxPrice);
  const [priceError, setPriceError] = useState<string | null>(null);
  // On phones the filters are a drawer (closed: the first screen shows products); on wider
  // screens a sidebar, and the toggle is hidden (styles.css).
  const [filtersOpen, setFiltersOpen] = useState(false);
  const closeButton = useRef<HTMLButtonElement>(null);
  const toggleButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (filtersOpen) closeButton.current?.focus();
  }, [filtersOpen]);
  const closeFilters = () => {
    setFiltersOpen(false);
    toggleButton.current?.focus();
  };
  useEffect(() => {
    setMinText(state.minPrice);
    setMaxText(state.maxPrice);
  }, [state.minPrice, state.maxPrice]);

  const update = (change: Partial<BrowseState>) => setParams(writeBrowse({ ...state, after: '', ...change }));
  const applyPrices = (e: FormEvent) => {
    e.preventDefault();
    const min = minText.trim() ? parsePriceInput(minText) : '';
    const max = maxText.trim() ? parsePriceInput(maxText) : '';
    if (min === null || max === null) {
      setPriceError('Enter prices like 25 or 19.99.');
      return;
    }
    setPriceError(null);
    update({ minPrice: min, maxPrice: max });
  };

  const title = state.q ? `Search: ${state.q}` : category ? category.name : state.category ? 'Category' : 'All products';
  const connection = data?.products;
  const unknownCategory = state.category !== '' && categories.data !== undefined && !category;
  useStatus(unknownCategory ? 404 : 200);
  const head: Head = {
    title,
    description: category
      ? `${category.name} at Shopgraph: prices, stock and variants of every product in the category.`
      : 'Every product at Shopgraph, with prices and stock.',
    // Categories and the whole catalog are pages of their own; search results are not indexed.
    path: category ? `/products?category=${encodeURIComponent(category.slug)}` : '/products',
    noindex: !!state.q || unknownCategory,
  };
  return (
    <>
      <PageTitle head={head}>{title}</PageTitle>
      <button
        type="button"
        className="filters-toggle"
        ref={toggleButton}
        aria-expanded={filtersOpen}
        aria-controls="filters"
        onClick={() => setFiltersOpen(true)}
        data-testid="filters-toggle"
      >
        Filters and sort
      </button>
      <div className="browse">
        <aside
          aria-label="Filters"
          id="filters"
          className={filtersOpen ? 'filters open' : 'filters'}
          onKeyDown={(e) => e.key === 'Escape' && filtersOpen && closeFilters()}
        >
          <button type="button" className="filters-close" ref={closeButton} onClick={closeFilters}>
            Show products
          </button>
          <label htmlFor="filter-category">Category</label>
          <select id="filter-category" value={state.category} onChange={(e) => update({ category: e.target.value })}>
            <option value="">All categories</option>
            {categories.data?.categories.map((c) => (
              <option key={c.id} value={c.slug}>
                {c.name}
              </option>
            ))}
          </select>
          <form onSubmit={applyPrices} aria-label="Price range">
            <fieldset>
              <legend>Price</legend>
              <label htmlFor="filter-min">Min price</label>
              <input id="filter-min" inputMode="decimal" value={minText} onChange={(e) => setMinText(e.target.value)} aria-describedby="price-error" />
              <label htmlFor="filter-max">Max price</label>
              <input id="filter-max" inputMode="decimal" value={maxText} onChange={(e) => setMaxText(e.target.value)} aria-describedby="price-error" />
              <button type="submit">Apply</button>
              {priceError && (
                <p id="price-error" className="field-error" role="alert">
                  {priceError}
                </p>
              )}
            </fieldset>
          </form>
          <label className="checkbox">
            <input type="checkbox" checked={state.inStock} onChange={(e) => update({ inStock: e.target.checked })} /> In stock only
          </label>
          <label htmlFor="sort">Sort by</label>
          <select id="sort" value={state.sort} onChange={(e) => update({ sort: e.target.value as BrowseState['sort'] })}>
            {['', ...SORTS].map((s) => (
              <option key={s} value={s}>
                {SORT_LABELS[s]}
              </option>
            ))}
          </select>
          <label className="checkbox">
            <input type="checkbox" checked={state.reverse} onChange={(e) => update({ reverse: e.target.checked })} /> Reverse order
          </label>
          <SearchFacets state={state} categories={categories.data?.categories ?? []} update={update} />
        </aside>
        <section aria-label="Results" className="results">
          {unknownCategory && <p role="alert">There is no category “{state.category}”.</p>}
          {(loading || waitingForCategory) && <Loading what="Loading products" />}
          {error && <ErrorState what="The catalog" error={error} retry={() => refetch()} />}
          {connection && (
            <>
              <p className="result-count" role="status" data-testid="result-count">
                {connection.totalCount} {connection.totalCount === 1 ? 'product' : 'products'}
              </p>
              <ProductGrid label="Products" products={connection.edges.map((e) => e.node)} />
              <nav aria-label="Pages" className="pager">
                {state.after && <Link to={`?${writeBrowse({ ...state, after: '' })}`}>First page</Link>}
                {connection.pageInfo.hasNextPage && connection.pageInfo.endCursor && (
                  <Link to={`?${writeBrowse({ ...state, after: connection.pageInfo.endCursor })}`} rel="next">
                    Next page
                  </Link>
                )}
              </nav>
            </>
          )}
        </section>
      </div>
    </>
  );
}
