// Price facets ↔ the browse page's min/max filters: a band chosen from the facets is the same
// band when read back from the URL, so its count and the results agree.
import { describe, expect, it } from 'vitest';
import { bandOf, pricesOf } from '../src/components/SearchFacets';

describe('price bands', () => {
  it('round-trips every band through the min/max filters', () => {
    for (const band of ['0-25', '25-50', '50-100', '100-250', '250-500', '500-']) {
      const { minPrice, maxPrice } = pricesOf(band);
      expect(bandOf(minPrice, maxPrice)).toBe(band);
    }
  });

  it('is no band for prices that are not one', () => {
    expect(bandOf('', '')).toBeNull();
    expect(bandOf('', '49.99')).toBeNull();
    expect(bandOf('25', '40')).toBeNull();
    expect(bandOf('19.99', '49.99')).toBeNull();
  });
});

describe('option values in the URL', () => {
  it('round-trips, toggles, and is bounded', async () => {
    const { readBrowse, writeBrowse, toggleOption, optionFilter } = await import('../src/lib/browseParams');
    const state = readBrowse(new URLSearchParams('category=apparel&opt=Colour:Navy&opt=Size:M&opt=Colour:Olive&opt=bad&opt=:x'));
    expect(state.options).toEqual({ Colour: ['Navy', 'Olive'], Size: ['M'] });
    expect(readBrowse(writeBrowse(state))).toEqual(state);
    expect(optionFilter(state.options)).toEqual([
      { name: 'Colour', values: ['Navy', 'Olive'] },
      { name: 'Size', values: ['M'] },
    ]);
    expect(toggleOption(state.options, 'Colour', 'Navy')).toEqual({ Colour: ['Olive'], Size: ['M'] });
    expect(toggleOption({ Size: ['M'] }, 'Size', 'M')).toEqual({});
    expect(toggleOption({}, 'Colour', 'Red: dark')).toEqual({ Colour: ['Red: dark'] });
    const many = new URLSearchParams(Array.from({ length: 8 }, (_, i) => ['opt', `o${i}:v`]));
    expect(Object.keys(readBrowse(many).options)).toHaveLength(5);
  });
});
