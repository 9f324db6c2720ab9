// @vitest-environment jsdom
// The cart's region when the graph cannot give the cart (the cart subgraph down, a network failure):
// the kind message where the cart would be, no raw error text, no made-up count in the header, and
// "Try again" reads the cart again. Rendered with React Testing Library against Apollo's MockedProvider.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { MockedProvider, type MockedResponse } from '@apollo/client/testing';
import { MemoryRouter } from 'react-router-dom';
import { GraphQLError } from 'graphql';
import { CartPageDocument, type CartPageQuery } from '../src/gql/graphql';
import { createCache, type Shop } from '../src/lib/apollo';
import { ShopProvider } from '../src/lib/shop';
import { CartLink } from '../src/components/CartLink';
import { Region } from '../src/components/Region';
import { CartPage } from '../src/pages/Cart';

const KIND = 'Cart is unavailable right now — try again.';
const RAW = /HTTP fetch failed|Cannot return null|Connection refused/;
const user = { id: 'u1', name: 'Robin', email: 'robin@example.com', role: 'CUSTOMER' as const };
const money = (amount: string) => ({ amount, currencyCode: 'USD' as const });
const emptyCart: CartPageQuery = {
  cart: {
    id: 'c1',
    updatedAt: '2026-12-07T12:00:00Z',
    guest: false,
    totalQuantity: 0,
    subtotal: money('0.00'),
    items: [],
    destination: null,
    cost: { subtotal: money('0.00'), discounts: money('0.00'), shipping: money('0.00'), tax: money('0.00'), total: money('0.00'), taxIncluded: false },
    shippingOptions: [],
    shippingMethod: null,
    discountCodes: [],
  },
};

const down: MockedResponse = { request: { query: CartPageDocument }, error: new Error("HTTP fetch failed from 'cart': cannot connect: Connection refused") };
const nullCart: MockedResponse = {
  request: { query: CartPageDocument },
  result: {
    data: null,
    errors: [new GraphQLError('Cannot return null for non-nullable field Query.cart.', { extensions: { code: 'SUBREQUEST_HTTP_ERROR' } })],
  },
};
const up: MockedResponse = { request: { query: CartPageDocument }, result: { data: emptyCart } };

function renderCart(mocks: MockedResponse[]) {
  const shop = { session: { user, subscribe: () => () => undefined } } as unknown as Shop;
  return render(
    <MockedProvider mocks={mocks} cache={createCache()}>
      <ShopProvider shop={shop}>
        <MemoryRouter>
          <header>
            <CartLink />
          </header>
          <main>
            <CartPage />
          </main>
        </MemoryRouter>
      </ShopProvider>
    </MockedProvider>,
  );
}

afterEach(cleanup);

describe('the cart region when the cart cannot be read', () => {
  it.each([
    ['a network failure', down],
    ['a GraphQL error from the router', nullCart],
  ])('shows the kind message and no count after %s', async (_, failure) => {
    renderCart([failure, failure]); // the header's read and the page's
    expect(await screen.findByText(KIND)).toBeTruthy();
    expect(await screen.findByText('(unavailable)')).toBeTruthy();
    expect(screen.queryByTestId('cart-count')).toBeNull(); // never "Cart 0"
    expect(document.body.textContent).not.toMatch(RAW);
  });

  it('reads the cart again on "Try again"', async () => {
    renderCart([down, down, up]);
    fireEvent.click(await screen.findByRole('button', { name: 'Try again' }));
    expect(await screen.findByText(/Your cart is empty/)).toBeTruthy();
    expect(screen.queryByText(KIND)).toBeNull();
  });

  it('shows the count once it is known', async () => {
    renderCart([up, up]);
    expect((await screen.findByTestId('cart-count')).textContent).toBe('0');
  });
});

describe('a region that throws while rendering', () => {
  function Broken(): never {
    throw new Error("HTTP fetch failed from 'cart'");
  }

  it('shows the kind message in its place only, and tries again on request', async () => {
    let broken = true;
    function Maybe() {
      return broken ? <Broken /> : <p>The cart is back</p>;
    }
    // React and the region report the caught error to the console; the fallback is the point here.
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      render(
        <>
          <Region what="Cart">
            <Maybe />
          </Region>
          <p>The rest of the page</p>
        </>,
      );
      expect(screen.getByRole('alert').textContent).toContain(KIND);
      expect(screen.getByText('The rest of the page')).toBeTruthy();
      expect(document.body.textContent).not.toMatch(RAW);
      broken = false;
      fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
      expect(await screen.findByText('The cart is back')).toBeTruthy();
    } finally {
      vi.restoreAllMocks();
    }
  });
});
