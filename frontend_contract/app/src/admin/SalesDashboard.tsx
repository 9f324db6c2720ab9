// The sales dashboard: salesStats pushes revenue, order count, average order value and top
// products for a sliding window whenever they change. The charts draw each pushed figure over
// time and the top products; tables beside them give the same figures to screen readers.
import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { SalesStatsDocument } from '../gql/graphql';
import { ErrorState, Loading, Money, PageTitle } from '../components/ui';
import { formatMoney } from '../lib/money';
import { useLiveSubscription } from '../lib/live';

interface Point {
  at: string; // time of the push, for the x axis
  revenue: number; // chart geometry only: every figure shown as text comes from the decimal string
  orders: number;
}

const WINDOWS = [
  [15, 'Last 15 minutes'],
  [60, 'Last hour'],
  [1440, 'Last 24 hours'],
] as const;
const BLUE = '#1d4ed8';
const GREEN = '#047857';

export function SalesDashboard() {
  const [windowMinutes, setWindowMinutes] = useState(60);
  const [points, setPoints] = useState<Point[]>([]);
  const { data, error } = useLiveSubscription(SalesStatsDocument, () => ({ windowMinutes }), String(windowMinutes), ({ salesStats: stats }) => {
    const point = { at: new Date().toLocaleTimeString(), revenue: Number(stats.revenue.amount), orders: stats.orderCount };
    setPoints((previous) => [...previous, point].slice(-60));
  });
  const stats = data?.salesStats;
  const loading = !data && !error;
  const currency = stats?.revenue.currencyCode ?? 'USD';
  const top = (stats?.topProducts ?? []).map((p) => ({ name: p.product.name, quantity: p.quantity, revenue: Number(p.revenue.amount) }));
  return (
    <>
      <PageTitle>Sales</PageTitle>
      <label htmlFor="window">Window</label>{' '}
      <select
        id="window"
        value={windowMinutes}
        onChange={(e) => {
          setPoints([]);
          setWindowMinutes(Number(e.target.value));
        }}
      >
        {WINDOWS.map(([minutes, label]) => (
          <option key={minutes} value={minutes}>
            {label}
          </option>
        ))}
      </select>
      {loading && <Loading what="Waiting for the first figures" />}
      {error && <ErrorState error={error} />}
      {stats && (
        <>
          <dl className="kpis" aria-live="polite">
            <div>
              <dt>Revenue</dt>
              <dd data-testid="kpi-revenue">
                <Money value={stats.revenue} />
              </dd>
            </div>
            <div>
              <dt>Orders</dt>
              <dd data-testid="kpi-orders">{stats.orderCount}</dd>
            </div>
            <div>
              <dt>Average order</dt>
              <dd data-testid="kpi-aov">
                <Money value={stats.averageOrderValue} />
              </dd>
            </div>
          </dl>
          <div className="charts">
            <figure data-testid="chart-timeline" data-points={points.length}>
              <figcaption>Revenue and orders in the window, as they change</figcaption>
              <LineChart width={520} height={240} data={points} margin={{ top: 8, right: 24, bottom: 8, left: 8 }}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="at" />
                <YAxis yAxisId="revenue" />
                <YAxis yAxisId="orders" orientation="right" allowDecimals={false} />
                <Tooltip formatter={(value, name) => (name === 'revenue' ? formatMoney({ amount: String(value), currencyCode: currency }) : value)} />
                <Line yAxisId="revenue" type="stepAfter" dataKey="revenue" stroke={BLUE} isAnimationActive={false} />
                <Line yAxisId="orders" type="stepAfter" dataKey="orders" stroke={GREEN} isAnimationActive={false} />
              </LineChart>
            </figure>
            <figure data-testid="chart-top-products" data-bars={top.length}>
              <figcaption>Top products by revenue</figcaption>
              <BarChart width={520} height={240} data={top} layout="vertical" margin={{ top: 8, right: 24, bottom: 8, left: 8 }}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis type="number" />
                <YAxis type="category" dataKey="name" width={160} />
                <Tooltip />
                <Bar dataKey="revenue" fill={BLUE} isAnimationActive={false} />
              </BarChart>
            </figure>
          </div>
          <table className="top-products" data-testid="top-products">
            <caption>Top products</caption>
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Sold</th>
                <th scope="col">Revenue</th>
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
        </>
      )}
    </>
  );
}
