// The page for an unknown address or product: answered with HTTP 404 by the server, with a way on.
import { Link, useLocation } from 'react-router-dom';
import { useStatus } from '../lib/head';
import { PageTitle } from './ui';

export function NotFound({ what = 'This page does not exist.' }: { what?: string }) {
  useStatus(404);
  const { pathname } = useLocation();
  return (
    <section className="not-found" data-testid="not-found">
      <PageTitle head={{ title: 'Not found', description: what, path: pathname, noindex: true }}>Not found</PageTitle>
      <p role="alert">{what}</p>
      <form role="search" method="get" action="/products" aria-label="Search the shop">
        <label htmlFor="not-found-search">Search the shop</label>
        <input id="not-found-search" type="search" name="q" />
        <button type="submit">Search</button>
      </form>
      <p>
        <Link to="/">Back to the shop</Link>
      </p>
    </section>
  );
}
