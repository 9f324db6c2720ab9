// The priced breakdown the server computed (subtotal, discounts, shipping, tax, total): a cart's
// at current prices, or an order's as it was placed. Never summed here.
import type { MoneyLike } from '../lib/money';
import { Money } from './ui';

export interface BreakdownLike {
  subtotal: MoneyLike;
  discounts: MoneyLike;
  shipping: MoneyLike;
  tax: MoneyLike;
  total: MoneyLike;
  taxIncluded: boolean;
}

const isZero = (m: MoneyLike) => /^-?0*(\.0*)?$/.test(m.amount);

export function Breakdown(props: { cost: BreakdownLike; shippingLabel?: string | null; subtotalTestId?: string }) {
  const { cost, shippingLabel, subtotalTestId = 'cost-subtotal' } = props;
  return (
    <div data-testid="breakdown">
      <dl className="totals breakdown">
        <dt>Subtotal</dt>
        <dd data-testid={subtotalTestId}>
          <Money value={cost.subtotal} />
        </dd>
        {!isZero(cost.discounts) && (
          <>
            <dt>Discounts</dt>
            <dd data-testid="cost-discounts">
              −<Money value={cost.discounts} />
            </dd>
          </>
        )}
        <dt>Shipping{shippingLabel ? ` (${shippingLabel})` : ''}</dt>
        <dd data-testid="cost-shipping">
          <Money value={cost.shipping} />
        </dd>
        <dt>{cost.taxIncluded ? 'Tax (included)' : 'Tax'}</dt>
        <dd data-testid="cost-tax">
          <Money value={cost.tax} />
        </dd>
        <dt>Total</dt>
        <dd data-testid="cost-total">
          <Money value={cost.total} />
        </dd>
      </dl>
      {cost.taxIncluded && (
        <p className="muted tax-note" data-testid="tax-included-note">
          Prices include tax; the tax shown is the part of the total that is tax.
        </p>
      )}
    </div>
  );
}
