// The sales dashboard. History from the first paint: salesSeries lists the window's buckets (paid
// orders and revenue per minute of the last hour, per hour of the last day, per six hours of the
// last week). Live: salesStats pushes the window's totals and top products whenever they change,
// and each push reads the series again (one statement), so the current bucket grows and new
// buckets appear as orders are paid. Tables beside the charts give the same figures to screen
// readers; every chart has a legend and says its units.
import { useState } from 'react';
import { useQuery } from '@apollo/client';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { SalesSeriesDocument, SalesStatsDocument, type SalesSeriesQuery, type SalesWindow } from '../gql/graphql';
import { ErrorState, Loading, Money, PageTitle } from '../components/ui';
import { Region } from '../components/Region';
import { formatMoney } from '../lib/money';
import { useLiveSubscription } from '../lib/live';

const WINDOWS: ReadonlyArray<{ window: SalesWindow; minutes: number; label: string; bucket: string }> = [
  { window: 'HOUR', minutes: 60, label: 'Last hour', bucket: 'per minute' },
  { window: 'DAY', minutes: 1440, label: 'Last day', bucket: 'per hour' },
  { window: 'WEEK', minutes: 10080, label: 'Last week', bucket: 'per 6 hours' },
];
const BLUE = '#1d4ed8';
const GREEN = '#047857';
// Full width of its box (a phone's included), a fixed height.
const CHART_SIZE = { width: '100%', height: 260 };
const REVENUE = 'Revenue';
const ORDERS = 'Paid orders';

type Point = SalesSeriesQuery['salesSeries']['points'][number];

/** A bucket's start as the x axis shows it: the time within a day, the day and hour within a week. */
function tick(iso: string, window: SalesWindow): string {
  const at = new Date(iso);
  if (window === 'WEEK') return at.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
  return at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function SalesHistory({ points, window, currency, bucket }: { points: readonly Point[]; window: SalesWindow; currency: string; bucket: string }) {
  // Chart geometry only: every figure shown as text comes from the decimal strings.
  const data = points.map((p) => ({ at: tick(p.start, window), revenue: Number(p.revenue.amount), orders: p.orders }));
  const orders = points.reduce((sum, p) => sum + p.orders, 0);
  return (
    <figure data-testid="chart-timeline" data-points={points.length} data-orders={orders}>
      <figcaption>
        Paid orders and revenue {bucket} ({currency})
      </figcaption>
      <LineChart responsive style={CHART_SIZE} data={data} margin={{ top: 8, right: 8, bottom: 8, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" />
        <XAxis dataKey="at" minTickGap={24} />
        <YAxis yAxisId="revenue" width={56} label={{ value: currency, angle: -90, position: 'insideLeft' }} />
        <YAxis yAxisId="orders" orientation="right" allowDecimals={false} width={32} label={{ value: 'orders', angle: 90, position: 'insideRight' }} />
        <Tooltip formatter={(value, name) => (name === `${REVENUE} (${currency})` ? formatMoney({ amount: String(value), currencyCode: currency }) : value)} />
        <Legend verticalAlign="top" height={28} />
        <Line yAxisId="revenue" name={`${REVENUE} (${currency})`} type="stepAfter" dataKey="revenue" stroke={BLUE} dot={false} isAnimationActive={false} />
        <Line yAxisId="orders" name={ORDERS} type="stepAfter" dataKey="orders" stroke={GREEN} dot={false} isAnimationActive={false} />
      </LineChart>
      <details className="chart-table">
        <summary>The figures as a table</summary>
        <div className="table-scroll">
          <table data-testid="series-table">
            <thead>
              <tr>
                <th scope="col">From</th>
                <th scope="col">{ORDERS}</th>
                <th scope="col">
                  {REVENUE} ({currency})
                </th>
              </tr>
            </thead>
            <tbody>
              {points
                .filter((p) => p.orders > 0)
                .map((p) => (
                  <tr key={p.start}>
                    <th scope="row">{new Date(p.start).toLocaleString()}</th>
                    <td>{p.orders}</td>
                    <td>
                      <Money value={p.revenue} />
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

export function SalesDashboard() {
  const [choice, setChoice] = useState(WINDOWS[0]);
  const series = useQuery(SalesSeriesDocument, { variables: { window: choice.window }, fetchPolicy: 'cache-and-network', notifyOnNetworkStatusChange: false });
  const { data, error } = useLiveSubscription(
    SalesStatsDocument,
    () => ({ windowMinutes: choice.minutes }),
    choice.window,
    () => {
      void series.refetch();
    },
  );
  const stats = data?.salesStats;
  const points = series.data?.salesSeries.points ?? [];
  const currency = stats?.revenue.currencyCode ?? points[0]?.revenue.currencyCode ?? 'USD';
  const top = (stats?.topProducts ?? []).map((p) => ({ name: p.product.name, quantity: p.quantity, revenue: Number(p.revenue.amount) }));
  return (
    <>
      <PageTitle>Sales</PageTitle>
      <label htmlFor="window">Window</label>{' '}
      <select id="window" value={choice.window} onChange={(e) => setChoice(WINDOWS.find((w) => w.window === e.target.value) ?? WINDOWS[0])}>
        {WINDOWS.map((w) => (
          <option key={w.window} value={w.window}>
            {w.label}
          </option>
        ))}
      </select>
      {series.error && <ErrorState what="The sales history" error={series.error} retry={() => series.refetch()} />}
      {error && <ErrorState what="Live sales figures" error={error} />}
      {stats ? (
        <dl className="kpis" aria-live="polite">
          <div>
            <dt>Revenue ({currency})</dt>
            <dd data-testid="kpi-revenue">
              <Money value={stats.revenue} />
            </dd>
          </div>
          <div>
            <dt>Paid orders</dt>
            <dd data-testid="kpi-orders">{stats.orderCount}</dd>
          </div>
          <div>
            <dt>Average order ({currency})</dt>
            <dd data-testid="kpi-aov">
              <Money value={stats.averageOrderValue} />
            </dd>
          </div>
        </dl>
      ) : (
        !error && <Loading what="Waiting for the live figures" />
      )}
      <div className="charts">
        {series.data ? (
          <Region what="The sales history chart">
            <SalesHistory points={points} window={choice.window} currency={currency} bucket={choice.bucket} />
          </Region>
        ) : (
          !series.error && <Loading what="Loading the sales history" />
        )}
        {stats && (
          <Region what="The top products chart">
            <figure data-testid="chart-top-products" data-bars={top.length}>
              <figcaption>Top products by revenue ({currency})</figcaption>
              <BarChart responsive style={CHART_SIZE} data={top} layout="vertical" margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis type="number" label={{ value: currency, position: 'insideBottomRight', offset: -4 }} />
                <YAxis type="category" dataKey="name" width={110} />
                <Tooltip formatter={(value) => formatMoney({ amount: String(value), currencyCode: currency })} />
                <Legend verticalAlign="top" height={28} />
                <Bar dataKey="revenue" name={`${REVENUE} (${currency})`} fill={BLUE} isAnimationActive={false} />
              </BarChart>
            </figure>
          </Region>
        )}
      </div>
      {stats && (
        <div className="table-scroll">
          <table className="top-products" data-testid="top-products">
            <caption>Top products</caption>
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Sold (units)</th>
                <th scope="col">Revenue ({currency})</th>
              </tr>
            </thead>
            <tbody>
              {stats.topProducts.map((p) => (
                <tr key={p.product.id}>
                  <th scope="row">{p.product.name}</th>
                  <td>{p.quantity}</td>
                  <td>
                    <Money value={p.revenue} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
