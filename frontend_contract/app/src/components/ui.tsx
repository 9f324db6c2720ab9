// Small shared pieces: money, loading and error states, inline field errors, page titles.
import { useEffect, useRef, type ReactNode } from 'react';
import type { ApolloError } from '@apollo/client';
import { useLocation } from 'react-router-dom';
import { formatMoney, type MoneyLike } from '../lib/money';
import { kindMessage } from '../lib/errors';
import { DEFAULT_DESCRIPTION, useHead, type Head } from '../lib/head';
import { OFFLINE_CHANGE, OfflineError } from '../lib/offline';

export function Money({ value }: { value: MoneyLike | null | undefined }) {
  if (!value) return <span className="muted">—</span>;
  return <span className="money">{formatMoney(value)}</span>;
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

/** A failed read or change, in kind words (lib/errors.ts): `what` names the region, e.g. "Cart". A change
 * refused offline (lib/offline.ts) says that nothing was changed. */
export function ErrorState({ error, retry, what }: { error: ApolloError | Error; retry?: () => void; what?: string }) {
  const offline = error instanceof OfflineError || ('networkError' in error && error.networkError instanceof OfflineError);
  return (
    <div className="error" role="alert" data-testid="error-state">
      <p>{offline ? OFFLINE_CHANGE : kindMessage(error, what)}</p>
      {retry && (
        <button type="button" onClick={() => retry()}>
          Try again
        </button>
      )}
    </div>
  );
}

/** An inline error tied to a control by id (the control sets aria-describedby to it). */
export function FieldError({ id, message }: { id: string; message: string | null }) {
  if (!message) return null;
  return (
    <p id={id} className="field-error" role="alert">
      {message}
    </p>
  );
}

/**
 * The page's heading, focused when the user arrives on a new page so screen readers announce it —
 * but not when only the query changes (a filter or sort), which would pull focus off that control.
 * It also declares the page's <head> (lib/head.tsx): `head` when given, else its text as the title.
 */
export function PageTitle({ children, head }: { children: ReactNode; head?: Head }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const { pathname, search } = useLocation();
  useHead(head ?? { title: typeof children === 'string' ? children : 'Shopgraph', description: DEFAULT_DESCRIPTION, path: pathname + search });
  useEffect(() => {
    ref.current?.focus();
  }, [pathname]);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

export function Status({ value }: { value: string }) {
  const words = value.toLowerCase().replace(/_/g, ' '); // PENDING_PAYMENT -> "Pending payment"
  return <span className={`status status-${value.toLowerCase()}`}>{words.charAt(0).toUpperCase() + words.slice(1)}</span>;
}
