// Facets beside search results: counts per category, price band, option value and stock, under
// the other filters chosen (they narrow together); a typo's correction and "did you mean".
import { useQuery } from '@apollo/client';
import { SearchFacetsDocument } from '../gql/graphql';
import { optionFilter, toggleOption, type BrowseState } from '../lib/browseParams';

interface Category {
  id: string;
  slug: string;
}

/** The price band a min/max pair is exactly (e.g. 25 and 49.99 → "25-50"), else null. */
export function bandOf(min: string, max: string): string | null {
  if (!min) return null;
  const low = Number(min);
  if (!Number.isInteger(low)) return null;
  if (!max) return `${low}-`;
  const high = Math.round((Number(max) + 0.01) * 100) / 100;
  return Number.isInteger(high) ? `${low}-${high}` : null;
}

/** A band key back into the min/max filters it means. */
export function pricesOf(band: string): { minPrice: string; maxPrice: string } {
  const [low, high] = band.split('-');
  return { minPrice: low, maxPrice: high ? (Number(high) - 0.01).toFixed(2) : '' };
}

export function SearchFacets({
  state,
  categories,
  update,
}: {
  state: BrowseState;
  categories: readonly Category[];
  update: (change: Partial<BrowseState>) => void;
}) {
  const category = categories.find((c) => c.slug === state.category);
  const band = bandOf(state.minPrice, state.maxPrice);
  // With search text, or on a category's page: facets (and their counts) of what is listed.
  const shown = !!state.q || !!category;
  const { data } = useQuery(SearchFacetsDocument, {
    skip: !shown,
    variables: {
      query: state.q,
      filter: {
        categoryIds: category ? [category.id] : [],
        priceBands: band ? [band] : [],
        inStock: state.inStock ? true : null,
        options: optionFilter(state.options),
      },
    },
  });
  const search = data?.productSearch;
  if (!shown || !search) return null;
  const slugOf = (id: string) => categories.find((c) => c.id === id)?.slug ?? '';
  const choose = (kind: string, name: string, value: string) => {
    if (kind === 'CATEGORY') update({ category: slugOf(value) });
    else if (kind === 'PRICE') update(pricesOf(value));
    else if (kind === 'IN_STOCK') update({ inStock: value === 'true' });
    else update({ options: toggleOption(state.options, name, value) }); // OPTION: narrows the listing too
  };
  return (
    <section aria-label="Refine" className="facets" data-testid="facets">
      {search.correctedQuery && (
        <p className="muted" role="status">
          Showing results for “{search.correctedQuery}”.
        </p>
      )}
      {search.totalCount === 0 && search.didYouMean && (
        <p role="status">
          Did you mean{' '}
          <button type="button" className="link" onClick={() => update({ q: search.didYouMean ?? '' })}>
            {search.didYouMean}
          </button>
          ?
        </p>
      )}
      {search.facets.map((facet) => (
        <fieldset key={`${facet.kind}:${facet.name}`}>
          <legend>{facet.name}</legend>
          <ul>
            {facet.values.map((v) => (
              <li key={v.value}>
                <button
                  type="button"
                  className={v.selected ? 'facet chosen' : 'facet'}
                  aria-pressed={v.selected}
                  onClick={() => choose(facet.kind, facet.name, v.value)}
                >
                  {v.label}{' '}
                  <span className="count" data-testid={`facet-count-${facet.name}-${v.value}`}>
                    ({v.count})
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </fieldset>
      ))}
    </section>
  );
}
