// A guest's order, opened by its lookup token (/order-status?token=…): what was ordered, where it
// ships, the breakdown it was placed at. Signing up (or in) with the order's e-mail address moves
// it into the account's order history. Unpaid, it offers the payment's page (guestPayment).
import { useEffect } from 'react';
import { useQuery } from '@apollo/client';
import { Link, useLocation, useSearchParams } from 'react-router-dom';
import { GuestOrderDocument } from '../gql/graphql';
import { Breakdown } from '../components/Breakdown';
import { ErrorState, Loading, Money, PageTitle, Status } from '../components/ui';
import { useUser } from '../lib/shop';

export function GuestOrderPage() {
  const [params] = useSearchParams();
  const location = useLocation();
  const user = useUser();
  const token = params.get('token') ?? '';
  const { data, loading, error, refetch, startPolling, stopPolling } = useQuery(GuestOrderDocument, {
    variables: { token },
    skip: !token,
    fetchPolicy: 'cache-and-network',
  });
  // Unpaid: the payment (and then the order) changes when the provider says so; follow it.
  const waiting = data?.guestOrder?.status === 'PENDING_PAYMENT';
  useEffect(() => {
    if (!waiting) return;
    startPolling(2000);
    return () => stopPolling();
  }, [waiting, startPolling, stopPolling]);
  if (loading && !data) return <Loading what="Loading your order" />;
  if (error && !data && error.graphQLErrors.some((e) => e.extensions?.code === 'TOKEN_EXPIRED')) {
    return (
      <>
        <PageTitle>Link expired</PageTitle>
        <p data-testid="guest-order-expired">
          This order link has expired: use the link in your latest mail about the order.{' '}
          {user ? <Link to="/orders">Your orders</Link> : <Link to={`/signin?next=${encodeURIComponent('/orders')}`}>Sign in to see your orders</Link>}
        </p>
      </>
    );
  }
  if (error && !data) return <ErrorState what="This order" error={error} retry={() => refetch()} />;
  const order = data?.guestOrder;
  if (!order) {
    return (
      <>
        <PageTitle>Order not found</PageTitle>
        <p>
          This link opens no order: it is not valid, or the order is in an account now.{' '}
          {user ? <Link to="/orders">Your orders</Link> : <Link to={`/signin?next=${encodeURIComponent('/orders')}`}>Sign in to see your orders</Link>}
        </p>
      </>
    );
  }
  const placed = (location.state as { placed?: boolean } | null)?.placed;
  const payment = data?.guestPayment;
  const payHref = (() => {
    if (!payment?.nextActionUrl || typeof window === 'undefined') return null;
    const url = new URL(payment.nextActionUrl);
    url.searchParams.set('return_to', `${window.location.origin}/order-status?token=${encodeURIComponent(token)}`);
    return url.toString();
  })();
  const email = order.guestEmail ?? '';
  return (
    <>
      <PageTitle>{`Order ${order.number}`}</PageTitle>
      {placed && (
        <p role="status" data-testid="guest-order-placed">
          Thank you! Your order {order.number} is placed.
        </p>
      )}
      <p>
        Status: <Status value={order.status} />
      </p>
      <p data-testid="guest-order-email">Placed as a guest with {email}.</p>
      {order.status === 'PENDING_PAYMENT' && payHref && (
        <p>
          <a className="button primary" data-testid="guest-pay-now" href={payHref}>
            Pay now
          </a>
        </p>
      )}
      <ul aria-label="Ordered items">
        {order.items.map((item) => (
          <li key={item.id} data-testid="guest-order-item">
            {item.quantity} × {item.name} <Money value={item.lineTotal} />
          </li>
        ))}
      </ul>
      <p>
        Ships to {order.shippingAddress.name}, {order.shippingAddress.line1}, {order.shippingAddress.city} {order.shippingAddress.postalCode},{' '}
        {order.shippingAddress.country}
        {order.shippingMethod ? ` — ${order.shippingMethod}` : ''}
      </p>
      <Breakdown cost={order.cost} />
      <p data-testid="order-total">
        Total <Money value={order.total} />
      </p>
      {!user && (
        <p data-testid="claim-hint">
          <Link className="button primary" to={`/signup?email=${encodeURIComponent(email)}&next=${encodeURIComponent('/orders')}`}>
            Create an account to follow this order
          </Link>{' '}
          <span className="muted">
            with {email} — or <Link to={`/signin?next=${encodeURIComponent('/orders')}`}>sign in</Link> if you have one.
          </span>
        </p>
      )}
    </>
  );
}
