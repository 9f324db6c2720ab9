// The catalog page's state lives in the URL (shareable, survives reload and Back): search text,
// category, price range, stock, sort and the page's cursor.
import { parsePriceInput } from './money';

export const SORTS = ['RELEVANCE', 'PRICE', 'NAME', 'NEWEST'] as const;
export type Sort = (typeof SORTS)[number];

export interface BrowseState {
  q: string;
  category: string; // slug, "" for all
  minPrice: string; // decimal string, "" for none
  maxPrice: string;
  inStock: boolean;
  sort: Sort | '';
  reverse: boolean;
  after: string; // cursor of the page, "" for the first
}

export function readBrowse(params: URLSearchParams): BrowseState {
  const sort = params.get('sort') ?? '';
  return {
    q: params.get('q') ?? '',
    category: params.get('category') ?? '',
    minPrice: parsePriceInput(params.get('minPrice') ?? '') ?? '',
    maxPrice: parsePriceInput(params.get('maxPrice') ?? '') ?? '',
    inStock: params.get('inStock') === '1',
    sort: (SORTS as readonly string[]).includes(sort) ? (sort as Sort) : '',
    reverse: params.get('reverse') === '1',
    after: params.get('after') ?? '',
  };
}

/** The URL query for a state (empty values left out; any change but paging starts at page 1). */
export function writeBrowse(state: BrowseState): URLSearchParams {
  const out = new URLSearchParams();
  if (state.q) out.set('q', state.q);
  if (state.category) out.set('category', state.category);
  if (state.minPrice) out.set('minPrice', state.minPrice);
  if (state.maxPrice) out.set('maxPrice', state.maxPrice);
  if (state.inStock) out.set('inStock', '1');
  if (state.sort) out.set('sort', state.sort);
  if (state.reverse) out.set('reverse', '1');
  if (state.after) out.set('after', state.after);
  return out;
}
