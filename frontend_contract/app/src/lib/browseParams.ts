// The catalog page's state lives in the URL (shareable, survives reload and Back): search text,
// category, price range, stock, option values (`opt=Colour:Navy`, repeated), sort and the page's cursor.
import { parsePriceInput } from './money';

export const SORTS = ['RELEVANCE', 'PRICE', 'NAME', 'NEWEST'] as const;
export type Sort = (typeof SORTS)[number];

export interface BrowseState {
  q: string;
  category: string; // slug, "" for all
  minPrice: string; // decimal string, "" for none
  maxPrice: string;
  inStock: boolean;
  options: Record<string, string[]>; // option name -> chosen values (a product's variant has one of each)
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
    options: readOptions(params.getAll('opt')),
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
  for (const name of Object.keys(state.options).sort()) {
    for (const value of [...state.options[name]].sort()) out.append('opt', `${name}:${value}`);
  }
  if (state.sort) out.set('sort', state.sort);
  if (state.reverse) out.set('reverse', '1');
  if (state.after) out.set('after', state.after);
  return out;
}

const MAX_OPTIONS = 5; // as the graph allows
const MAX_VALUES = 50;

function readOptions(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of raw) {
    const at = item.indexOf(':');
    if (at <= 0 || at === item.length - 1) continue;
    const name = item.slice(0, at);
    const value = item.slice(at + 1);
    if (!(name in out) && Object.keys(out).length >= MAX_OPTIONS) continue;
    const values = (out[name] ??= []);
    if (!values.includes(value) && values.length < MAX_VALUES) values.push(value);
  }
  return out;
}

/** The state with `value` of option `name` chosen, or unchosen if it was. */
export function toggleOption(options: Record<string, string[]>, name: string, value: string): Record<string, string[]> {
  const current = options[name] ?? [];
  const values = current.includes(value) ? current.filter((v) => v !== value) : [...current, value];
  const out = { ...options };
  if (values.length) out[name] = values;
  else delete out[name];
  return out;
}

/** The graph's option filter for a state. */
export function optionFilter(options: Record<string, string[]>): Array<{ name: string; values: string[] }> {
  return Object.entries(options).map(([name, values]) => ({ name, values }));
}
