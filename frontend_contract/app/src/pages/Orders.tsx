// Order history, and one order's page whose status follows the order live (orderUpdated).
import { useEffect, useState } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { Link, useLocation, useParams } from 'react-router-dom';
import { CancelOrderDocument, OrderDetailDocument, OrderHistoryDocument, OrderUpdatedDocument } from '../gql/graphql';
import { ErrorState, FieldError, Loading, Money, PageTitle, Status } from '../components/ui';
import { useLiveSubscription } from '../lib/live';
import { PaymentPanel, paymentUnsettled, settleDelay } from './Payment';
import { Breakdown } from '../components/Breakdown';

const dateTime = (iso: string) => new Date(iso).toLocaleString();

export function OrdersPage() {
  const [after, setAfter] = useState<string | null>(null);
  const { data, loading, error, refetch } = useQuery(OrderHistoryDocument, { variables: { first: 10, after }, fetchPolicy: 'cache-and-network' });
  const orders = data?.me?.orders;
  return (
    <>
      <PageTitle>Your orders</PageTitle>
      {loading && !data && <Loading what="Loading your orders" />}
      {error && <ErrorState what="Your order history" error={error} retry={() => refetch()} />}
      {orders && orders.totalCount === 0 && <p>No orders yet.</p>}
      {orders && orders.totalCount > 0 && (
        <table className="orders cards">
          <caption className="visually-hidden">Your orders, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Placed</th>
              <th scope="col">Items</th>
              <th scope="col">Status</th>
              <th scope="col">Total</th>
            </tr>
          </thead>
          <tbody>
            {orders.edges.map(({ node }) => (
              <tr key={node.id}>
                <th scope="row">
                  <Link to={`/orders/${encodeURIComponent(node.number)}`}>{node.number}</Link>
                </th>
                <td data-label="Placed">{dateTime(node.createdAt)}</td>
                <td data-label="Items">{node.items.map((i) => `${i.quantity} × ${i.product?.name ?? '—'}`).join(', ')}</td>
                <td data-label="Status">
                  <Status value={node.status} />
                </td>
                <td data-label="Total">
                  <Money value={node.total} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav aria-label="Pages" className="pager">
        {after && (
          <button type="button" onClick={() => setAfter(null)}>
            Newest orders
          </button>
        )}
        {orders?.pageInfo.hasNextPage && (
          <button type="button" onClick={() => setAfter(orders.pageInfo.endCursor)}>
            Older orders
          </button>
        )}
      </nav>
    </>
  );
}

function LiveStatus({ orderId, onChange }: { orderId: string; onChange: () => void }) {
  // Each event carries the order's id and status: the normalised cache updates the page; the payment
  // (another subgraph's) is read again on each change.
  const { error, data } = useLiveSubscription(OrderUpdatedDocument, () => ({ id: orderId }), orderId, onChange);
  if (error) return <span className="muted small">(live updates paused — reconnecting)</span>;
  return (
    <span className="muted small" data-testid="live">
      {data ? `live · last change ${dateTime(data.orderUpdated.occurredAt)}` : 'live'}
    </span>
  );
}

export function OrderPage() {
  const { number = '' } = useParams();
  const location = useLocation();
  const placed = (location.state as { placed?: boolean } | null)?.placed;
  // Sent back by Stripe (`redirect_status`) after the card was taken: its webhook may not be here yet.
  const returned = ['succeeded', 'processing'].includes(new URLSearchParams(location.search).get('redirect_status') ?? '');
  const { data, loading, error, refetch } = useQuery(OrderDetailDocument, { variables: { number } });
  const [cancel, cancelled] = useMutation(CancelOrderDocument);
  const unsettled = data?.order ? paymentUnsettled(data.order.status, data.order.payment?.status, returned) : false;
  const [attempt, setAttempt] = useState(0);
  const shown = `${data?.order?.status}/${data?.order?.payment?.status}`;
  useEffect(() => setAttempt(0), [shown]); // a change starts the backoff over
  useEffect(() => {
    if (!unsettled) return;
    const timer = setTimeout(() => {
      void refetch();
      setAttempt((a) => a + 1);
    }, settleDelay(attempt));
    return () => clearTimeout(timer);
  }, [unsettled, attempt, refetch]);
  // Only the first load shows the placeholder: a refetch (each live change) keeps the order on screen,
  // or the card form mounted in it would be torn down in the middle of a payment.
  if (loading && !data) return <Loading what="Loading the order" />;
  if (error) return <ErrorState what="This order" error={error} retry={() => refetch()} />;
  const order = data?.order;
  if (!order) return <p role="alert">There is no order {number} in your account.</p>;
  const cancelError = cancelled.data?.cancelOrder.userErrors.map((e) => e.message).join(' ') ?? null;
  const address = order.shippingAddress;
  return (
    <article className="order">
      <PageTitle>{`Order ${order.number}`}</PageTitle>
      {placed && (
        <p className="notice" role="status">
          Thank you! Your order is placed{order.status === 'PENDING_PAYMENT' ? ' — now pay for it below to confirm it' : ''}.
        </p>
      )}
      <PaymentPanel payment={order.payment} orderNumber={order.number} orderStatus={order.status} returned={returned} />
      <p>
        Status:{' '}
        <strong aria-live="polite" data-testid="order-status">
          <Status value={order.status} />
        </strong>{' '}
        <LiveStatus orderId={order.id} onChange={() => void refetch()} />
      </p>
      <p className="muted">Placed {dateTime(order.createdAt)}</p>
      <table className="order-lines">
        <caption className="visually-hidden">Items</caption>
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Quantity</th>
            <th scope="col">Price</th>
            <th scope="col">Total</th>
          </tr>
        </thead>
        <tbody>
          {order.items.map((item) => (
            <tr key={item.id}>
              <th scope="row">{item.name}</th>
              <td>{item.quantity}</td>
              <td>
                <Money value={item.unitPrice} />
              </td>
              <td>
                <Money value={item.lineTotal} />
              </td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={3}>
              Total
            </th>
            <td data-testid="order-total">
              <Money value={order.total} />
            </td>
          </tr>
        </tfoot>
      </table>
      <h2>What you paid</h2>
      {order.shippingMethod && <p data-testid="order-shipping-method">Shipping: {order.shippingMethod}</p>}
      {order.discountCodes.length > 0 && <p data-testid="order-discount-codes">Discounts: {order.discountCodes.join(', ')}</p>}
      <Breakdown cost={order.cost} />
      <h2>Shipping to</h2>
      <address>
        {address.name}
        <br />
        {address.line1}
        {address.line2 && (
          <>
            <br />
            {address.line2}
          </>
        )}
        <br />
        {address.postalCode} {address.city} {address.region} {address.country}
      </address>
      {(order.status === 'PENDING_PAYMENT' || order.status === 'PAID') && (
        <p>
          <button type="button" disabled={cancelled.loading} onClick={() => cancel({ variables: { input: { orderId: order.id } } })}>
            Cancel this order
          </button>
        </p>
      )}
      <FieldError id="cancel-error" message={cancelError || null} />
      <p>
        <Link to="/orders">All your orders</Link>
      </p>
    </article>
  );
}
