// Live orders: the newest orders (allOrders) with new ones and status changes pushed by
// orderEvents. After a reconnect the subscription resumes after the last event id shown.
import { useRef, useState } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import {
  AdminAllOrdersDocument,
  AdminRefundPaymentDocument,
  AdminUpdateOrderStatusDocument,
  OrderEventsDocument,
  type OrderEventsSubscription,
} from '../gql/graphql';
import { ErrorState, Loading, Money, PageTitle, Status } from '../components/ui';
import { useShop } from '../lib/shop';
import { useLiveSubscription, useSocketState } from '../lib/live';
import { eventIdAfter, nextStatuses } from './events';
import { kindMessage } from '../lib/errors';

type Event = OrderEventsSubscription['orderEvents'];
interface Row {
  id: string;
  number: string;
  status: string;
  createdAt: string;
  itemCount: number;
  total: { amount: string; currencyCode: string };
  user: { name: string; email: string } | null;
  guestEmail?: string | null;
  payment?: AdminPayment | null;
}
/** Who placed an order: the account's address, or a guest's (no account until the order is claimed). */
function customer(order: { user: { email: string } | null; guestEmail?: string | null }): string {
  return order.user?.email ?? `${order.guestEmail ?? 'unknown'} (guest)`;
}

interface AdminPayment {
  id: string;
  status: string;
  methodSummary?: string | null;
  captured: { amount: string; currencyCode: string };
  refunded: { amount: string; currencyCode: string };
}

/** The payment's state, and refunds (in full, or of an amount) once it is captured. */
function PaymentCell({ order }: { order: Row }) {
  const [amount, setAmount] = useState('');
  const [refund, { loading, data, error }] = useMutation(AdminRefundPaymentDocument);
  const payment = data?.refundPayment.payment ?? order.payment;
  if (!order.payment || !payment) return <span className="muted">—</span>;
  const problem = data?.refundPayment.userErrors.map((e) => e.message).join(' ') || (error && kindMessage(error, 'Refunding'));
  const refundable = payment.status === 'CAPTURED' && payment.refunded.amount !== payment.captured.amount;
  return (
    <div data-testid="payment-cell">
      <Status value={payment.status} /> {order.payment.methodSummary ?? ''}
      {payment.refunded.amount !== '0.00' && payment.refunded.amount !== '0' && (
        <span className="muted small">
          {' '}
          refunded <Money value={payment.refunded} />
        </span>
      )}
      {refundable && (
        <form
          className="actions"
          onSubmit={(e) => {
            e.preventDefault();
            void refund({ variables: { input: { paymentId: payment.id, amount: amount.trim() === '' ? null : amount.trim() } } });
          }}
        >
          <input
            aria-label={`Refund amount for ${order.number} (empty: all)`}
            value={amount}
            onChange={(e) => setAmount(e.target.value)}
            placeholder="all"
            size={6}
            inputMode="decimal"
          />
          <button type="submit" disabled={loading}>
            Refund
          </button>
        </form>
      )}
      {problem && (
        <span className="field-error" role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}
const LABEL: Record<string, string> = { PAID: 'Mark paid', SHIPPED: 'Mark shipped', DELIVERED: 'Mark delivered', CANCELLED: 'Cancel' };

function StatusActions({ order, onChanged }: { order: Row; onChanged: (orderId: string, status: string) => void }) {
  const [update, { loading, data, error }] = useMutation(AdminUpdateOrderStatusDocument, {
    onCompleted: ({ updateOrderStatus: { order: changed } }) => changed && onChanged(changed.id, changed.status),
  });
  const problem = data?.updateOrderStatus.userErrors.map((e) => e.message).join(' ') || (error && kindMessage(error, 'Changing the status'));
  return (
    <div className="actions">
      {nextStatuses(order.status).map((status) => (
        <button
          key={status}
          type="button"
          disabled={loading}
          aria-label={`${LABEL[status]}: order ${order.number}`}
          onClick={() => update({ variables: { input: { orderId: order.id, status } } })}
        >
          {LABEL[status]}
        </button>
      ))}
      {problem && (
        <span className="field-error" role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}

export function OrdersFeed() {
  const { socket: watch } = useShop();
  const orders = useQuery(AdminAllOrdersDocument, { variables: { first: 20 }, fetchPolicy: 'cache-and-network' });
  const [events, setEvents] = useState<Event[]>([]);
  // The newest status known of each order, from its events and from this admin's own changes
  // (the answer to a change may come before its event, e.g. while the feed reconnects).
  const [statuses, setStatuses] = useState<ReadonlyMap<string, string>>(new Map());
  const noteStatus = (orderId: string, status: string) => setStatuses((m) => new Map(m).set(orderId, status));
  const lastId = useRef<string | null>(null);
  // Every (re)subscription starts after the last event shown: after a dropped socket comes back,
  // or after the subscription failed (e.g. the router closed it when the token expired).
  const socket = useSocketState(watch);
  const live = useLiveSubscription(
    OrderEventsDocument,
    () => ({ after: lastId.current }),
    `reconnect-${socket.reconnects}`,
    ({ orderEvents: event }) => {
      if (!eventIdAfter(event.id, lastId.current)) return; // a replay's overlap
      lastId.current = event.id;
      setEvents((previous) => [event, ...previous].slice(0, 50));
      noteStatus(event.order.id, event.order.status);
    },
  );
  const connected = socket.connected && !live.error;

  // New orders from the feed first, then the list, each with its newest known status.
  const listed = orders.data?.allOrders.edges.map((e) => e.node) ?? [];
  const known = new Set(listed.map((o) => o.id));
  const fresh = events.filter((e) => e.type === 'CREATED' && !known.has(e.order.id)).map((e) => e.order);
  const rows: Row[] = [...new Map([...fresh, ...listed].map((o) => [o.id, o])).values()].map((o) => ({
    ...o,
    status: statuses.get(o.id) ?? o.status,
  }));

  return (
    <>
      <PageTitle>Orders</PageTitle>
      <section aria-labelledby="feed-heading" className="feed">
        <h2 id="feed-heading">
          Live events{' '}
          <span className={connected ? 'status status-paid' : 'status status-cancelled'} data-testid="feed-state">
            {connected ? 'live' : 'connecting'}
          </span>
        </h2>
        {live.error && <p className="muted small">Live events are paused — reconnecting.</p>}
        <ol aria-live="polite" data-testid="event-feed" className="events">
          {events.length === 0 && <li className="muted">Waiting for order events…</li>}
          {events.map((e) => (
            <li key={e.id}>
              <Status value={e.type} /> {e.order.number} · {customer(e.order)} · <Money value={e.order.total} /> ·{' '}
              <time dateTime={e.occurredAt}>{new Date(e.occurredAt).toLocaleTimeString()}</time>
            </li>
          ))}
        </ol>
      </section>
      <section aria-labelledby="orders-heading">
        <h2 id="orders-heading">Latest orders {orders.data && <span className="muted">({orders.data.allOrders.totalCount + fresh.length} in all)</span>}</h2>
        {orders.loading && !orders.data && <Loading what="Loading orders" />}
        {orders.error && <ErrorState what="The orders list" error={orders.error} retry={() => orders.refetch()} />}
        <table className="orders cards" data-testid="admin-orders">
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Customer</th>
              <th scope="col">Items</th>
              <th scope="col">Total</th>
              <th scope="col">Status</th>
              <th scope="col">Payment</th>
              <th scope="col">Change status</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((order) => (
              <tr key={order.id} data-order={order.number}>
                <th scope="row">{order.number}</th>
                <td data-label="Customer">{customer(order)}</td>
                <td data-label="Items">{order.itemCount}</td>
                <td data-label="Total">
                  <Money value={order.total} />
                </td>
                <td data-label="Status">
                  <Status value={order.status} />
                </td>
                <td data-label="Payment">
                  <PaymentCell order={order} />
                </td>
                <td data-label="Change status">
                  <StatusActions order={order} onChanged={noteStatus} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
