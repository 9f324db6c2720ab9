// @vitest-environment jsdom
// The sales dashboard against a mocked graph (Apollo's MockedProvider): the history chart has the
// window's buckets from the first paint (salesSeries), each live push (salesStats) reads the series
// again so the new order shows in it, and the charts name their units.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import { MockedProvider, type MockedResponse } from '@apollo/client/testing';
import { MemoryRouter } from 'react-router-dom';
import { SalesSeriesDocument, SalesStatsDocument, type SalesSeriesQuery, type SalesStatsSubscription } from '../src/gql/graphql';
import { createCache } from '../src/lib/apollo';
import { SalesDashboard } from '../src/admin/SalesDashboard';

const money = (amount: string) => ({ amount, currencyCode: 'USD' as const });
const START = Date.parse('2026-12-07T12:00:00Z');

/** An hour in minutes, with `orders[i]` paid orders of $10.50 in minute i. */
function hour(orders: Record<number, number>): SalesSeriesQuery {
  const points = Array.from({ length: 60 }, (_, i) => ({
    start: new Date(START + i * 60_000).toISOString(),
    orders: orders[i] ?? 0,
    revenue: money(((orders[i] ?? 0) * 10.5).toFixed(2)),
  }));
  return { salesSeries: { window: 'HOUR', bucket: 'MINUTE', points } };
}

const stats: SalesStatsSubscription = {
  salesStats: {
    windowMinutes: 60,
    orderCount: 4,
    revenue: money('42.00'),
    averageOrderValue: money('10.50'),
    topProducts: [{ quantity: 4, revenue: money('42.00'), product: { id: 'p1', sku: 'LAMP', name: 'Desk lamp' } }],
  },
};

const mocks: MockedResponse[] = [
  { request: { query: SalesSeriesDocument, variables: { window: 'HOUR' } }, result: { data: hour({ 10: 2, 50: 1 }) } },
  { request: { query: SalesStatsDocument, variables: { windowMinutes: 60 } }, result: { data: stats }, delay: 50 },
  // Read again after the push: a new order in the last minute.
  { request: { query: SalesSeriesDocument, variables: { window: 'HOUR' } }, result: { data: hour({ 10: 2, 50: 1, 59: 1 }) } },
];

beforeAll(() => {
  // Recharts' responsive charts watch their box; jsdom has no layout, so nothing to report.
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
});
afterEach(cleanup);

describe('the sales dashboard', () => {
  it('charts the last hour from the first paint and adds the live push', async () => {
    render(
      <MockedProvider mocks={mocks} cache={createCache()}>
        <MemoryRouter>
          <SalesDashboard />
        </MemoryRouter>
      </MockedProvider>,
    );
    const chart = await screen.findByTestId('chart-timeline');
    expect(chart.getAttribute('data-points')).toBe('60');
    expect(within(chart).getByText(/Paid orders and revenue per minute \(USD\)/)).toBeTruthy();
    // The push: its figures, then the series read again with the new order.
    expect((await screen.findByTestId('kpi-orders')).textContent).toBe('4');
    expect(screen.getByTestId('kpi-revenue').textContent).toBe('$42.00');
    await waitFor(() => expect(screen.getByTestId('chart-timeline').getAttribute('data-orders')).toBe('4'));
    // The same figures as a table: the buckets that had orders, with their revenue.
    const rows = within(screen.getByTestId('series-table')).getAllByRole('row').slice(1);
    expect(
      rows.map((r) =>
        within(r)
          .getAllByRole('cell')
          .map((c) => c.textContent),
      ),
    ).toEqual([
      ['2', '$21.00'],
      ['1', '$10.50'],
      ['1', '$10.50'],
    ]);
    expect(screen.getByText('Top products by revenue (USD)')).toBeTruthy();
    expect(within(screen.getByTestId('top-products')).getByRole('columnheader', { name: 'Revenue (USD)' })).toBeTruthy();
  });

  it('says kindly when the history cannot be read', async () => {
    const down = { request: { query: SalesSeriesDocument, variables: { window: 'HOUR' } }, error: new Error("HTTP fetch failed from 'orders'") };
    // The series fails, and fails again when the live push asks for it.
    const failing: MockedResponse[] = [down, { request: { query: SalesStatsDocument, variables: { windowMinutes: 60 } }, result: { data: stats } }, down];
    render(
      <MockedProvider mocks={failing} cache={createCache()}>
        <MemoryRouter>
          <SalesDashboard />
        </MemoryRouter>
      </MockedProvider>,
    );
    expect(await screen.findByText('The sales history is unavailable right now — try again.')).toBeTruthy();
    expect(document.body.textContent).not.toContain('HTTP fetch failed');
  });
});
