// The order's payment step and its state. With the test provider (dev) the shopper pays on its card
// page (the form posts there, never to the shop's API); with a publishable key configured, Stripe's
// own element takes the card (card data goes to Stripe only). 3-D Secure and declines are said plainly;
// the order page refetches this when its order changes (orderUpdated).
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Money, Status } from '../components/ui';

export interface PaymentInfo {
  id: string;
  status: string;
  provider: string;
  methodSummary?: string | null;
  failureReason?: string | null;
  nextActionUrl?: string | null;
  clientSecret?: string | null;
  publishableKey?: string | null;
  elementScriptUrl?: string | null;
  amount: { amount: string; currencyCode: string };
  refunded?: { amount: string; currencyCode: string };
}

/**
 * Does the payment shown lag behind the order? Payments moves on after the order event the page
 * followed (a cancelled order's payment is voided after `order.cancelled`; a shopper back from the
 * provider's page waits for its webhook), and no order event follows to say so: the page reads the
 * order again, with a backoff, until this is false.
 */
export function paymentUnsettled(orderStatus: string, paymentStatus: string | null | undefined, returned: boolean): boolean {
  const open = paymentStatus === 'PENDING' || paymentStatus === 'REQUIRES_ACTION';
  if (paymentStatus == null) return orderStatus === 'PENDING_PAYMENT';
  if (orderStatus === 'PENDING_PAYMENT') return returned && open;
  if (orderStatus === 'CANCELLED') return open || paymentStatus === 'AUTHORISED';
  return open; // PAID or later with a payment not yet authorised
}

/** The refetch delays while unsettled: 0.5 s doubling to 8 s, then every 8 s. */
export function settleDelay(attempt: number): number {
  return Math.min(8000, 500 * 2 ** attempt);
}

/** Where the provider's page sends the shopper back: this order's page. */
export function payUrl(nextActionUrl: string, orderNumber: string, origin: string): string {
  const url = new URL(nextActionUrl);
  url.searchParams.set('return_to', `${origin}/orders/${encodeURIComponent(orderNumber)}`);
  return url.toString();
}

export function PaymentPanel({
  payment,
  orderNumber,
  orderStatus,
  returned = false,
}: {
  payment: PaymentInfo | null | undefined;
  orderNumber: string;
  orderStatus: string;
  returned?: boolean;
}) {
  if (!payment) {
    return orderStatus === 'PENDING_PAYMENT' ? (
      <section className="payment" data-testid="payment-state">
        <h2>Payment</h2>
        <p>Preparing your payment… this page updates by itself.</p>
      </section>
    ) : null;
  }
  const origin = typeof window === 'undefined' ? '' : window.location.origin;
  const reason = payment.failureReason ? ` (${payment.failureReason.replace(/_/g, ' ')})` : '';
  return (
    <section className="payment" aria-labelledby="payment-heading">
      <h2 id="payment-heading">
        Payment <Status value={payment.status} />
      </h2>
      <div data-testid="payment-state" aria-live="polite">
        {payment.status === 'PENDING' && orderStatus === 'PENDING_PAYMENT' && returned && (
          // Back from the provider, its confirmation not here yet: no second card form meanwhile.
          <p data-testid="payment-confirming">We have your card details; waiting for your bank to confirm the payment… this page updates by itself.</p>
        )}
        {payment.status === 'PENDING' && orderStatus === 'PENDING_PAYMENT' && !returned && (
          <>
            <p>
              Your order is reserved until you pay <Money value={payment.amount} />.
            </p>
            {payment.publishableKey && payment.clientSecret && payment.elementScriptUrl ? (
              <StripeElement scriptUrl={payment.elementScriptUrl} publishableKey={payment.publishableKey} clientSecret={payment.clientSecret} />
            ) : (
              payment.nextActionUrl && (
                <a className="button primary" data-testid="pay-now" href={payUrl(payment.nextActionUrl, orderNumber, origin)}>
                  Pay now
                </a>
              )
            )}
          </>
        )}
        {payment.status === 'REQUIRES_ACTION' && (
          <div role="alert">
            <p>Your bank asks you to confirm this payment (3-D Secure).</p>
            {payment.publishableKey && payment.clientSecret && payment.elementScriptUrl ? (
              // Left half-way (a reload, a closed tab): Stripe.js shows the bank's step again.
              <StripeNextAction scriptUrl={payment.elementScriptUrl} publishableKey={payment.publishableKey} clientSecret={payment.clientSecret} />
            ) : (
              payment.nextActionUrl && (
                <a className="button primary" href={payUrl(payment.nextActionUrl, orderNumber, origin)}>
                  Confirm with your bank
                </a>
              )
            )}
          </div>
        )}
        {payment.status === 'AUTHORISED' && <p>Payment authorised{payment.methodSummary ? ` — ${payment.methodSummary}` : ''}.</p>}
        {payment.status === 'CAPTURED' && (
          <p>
            Paid <Money value={payment.amount} />
            {payment.methodSummary ? ` with ${payment.methodSummary}` : ''}.
            {payment.refunded && payment.refunded.amount !== '0.00' && payment.refunded.amount !== '0' && (
              <>
                {' '}
                Refunded <Money value={payment.refunded} />.
              </>
            )}
          </p>
        )}
        {payment.status === 'FAILED' && (
          <p role="alert" className="field-error">
            Your card was declined{reason}. Nothing was charged and the order was cancelled; its items are back in stock.
          </p>
        )}
        {payment.status === 'CANCELLED' && <p>The payment was cancelled; nothing was charged.</p>}
        {(payment.status === 'PENDING' || payment.status === 'REQUIRES_ACTION') && orderStatus === 'CANCELLED' && (
          <p>The order is cancelled; its payment is being cancelled too. Nothing will be charged.</p>
        )}
      </div>
    </section>
  );
}

// -- Stripe's Payment Element (Stripe.js from the URL payments names, only when a publishable key is
// configured; the page's CSP must admit its origins: storefront.script_src/frame_src/connect_src) --

interface StripeElements {
  create(kind: 'payment'): { mount(node: HTMLElement): void; destroy(): void };
}
interface StripeJs {
  elements(options: { clientSecret: string }): StripeElements;
  confirmPayment(options: { elements: StripeElements; confirmParams: { return_url: string } }): Promise<{ error?: { message?: string } }>;
  handleNextAction(options: { clientSecret: string }): Promise<{ error?: { message?: string } }>;
}
type StripeFactory = (key: string) => StripeJs;

let loading: Promise<StripeFactory> | null = null;

function loadStripe(scriptUrl: string): Promise<StripeFactory> {
  const existing = (window as unknown as { Stripe?: StripeFactory }).Stripe;
  if (existing) return Promise.resolve(existing);
  // One script tag however often the element mounts (the order page re-renders as the order changes).
  if (loading) return loading;
  loading = new Promise<StripeFactory>((resolve, reject) => {
    const script = document.createElement('script');
    script.src = scriptUrl;
    script.onload = () => {
      const loaded = (window as unknown as { Stripe?: StripeFactory }).Stripe;
      if (loaded) resolve(loaded);
      else reject(new Error('Stripe.js did not load'));
    };
    script.onerror = () => {
      loading = null; // a later mount may try again
      reject(new Error('The card form could not be loaded. Reload the page to try again.'));
    };
    document.head.appendChild(script);
  });
  return loading;
}

function StripeElement({ scriptUrl, publishableKey, clientSecret }: { scriptUrl: string; publishableKey: string; clientSecret: string }) {
  const mount = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState<{ stripe: StripeJs; elements: StripeElements } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    let element: { destroy(): void } | null = null;
    let live = true;
    loadStripe(scriptUrl)
      .then((Stripe) => {
        if (!live || !mount.current) return;
        const stripe = Stripe(publishableKey);
        const elements = stripe.elements({ clientSecret });
        const created = elements.create('payment');
        created.mount(mount.current);
        element = created;
        setReady({ stripe, elements });
      })
      .catch((e: Error) => setMessage(e.message));
    return () => {
      live = false;
      element?.destroy();
    };
  }, [scriptUrl, publishableKey, clientSecret]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!ready || busy) return;
    setBusy(true);
    const result = await ready.stripe.confirmPayment({ elements: ready.elements, confirmParams: { return_url: window.location.href } });
    setBusy(false);
    if (result.error) setMessage(result.error.message ?? 'The payment did not go through.');
  };
  return (
    <form onSubmit={submit} aria-label="Card payment">
      <div ref={mount} />
      {message && (
        <p role="alert" className="field-error">
          {message}
        </p>
      )}
      <button type="submit" className="primary" disabled={!ready || busy}>
        {busy ? 'Paying…' : 'Pay'}
      </button>
    </form>
  );
}

function StripeNextAction({ scriptUrl, publishableKey, clientSecret }: { scriptUrl: string; publishableKey: string; clientSecret: string }) {
  const [state, setState] = useState<'idle' | 'busy' | 'done'>('idle');
  const [message, setMessage] = useState<string | null>(null);
  const confirm = async () => {
    setState('busy');
    setMessage(null);
    try {
      const stripe = (await loadStripe(scriptUrl))(publishableKey);
      const result = await stripe.handleNextAction({ clientSecret });
      if (result.error) {
        setMessage(result.error.message ?? 'Your bank did not confirm the payment.');
        setState('idle');
      } else setState('done');
    } catch (e) {
      setMessage((e as Error).message);
      setState('idle');
    }
  };
  if (state === 'done')
    return <p data-testid="payment-confirming">Confirmed with your bank; waiting for the payment to go through… this page updates by itself.</p>;
  return (
    <>
      <button type="button" className="primary" onClick={() => void confirm()} disabled={state === 'busy'}>
        Confirm with your bank
      </button>
      {message && <p className="field-error">{message}</p>}
    </>
  );
}
