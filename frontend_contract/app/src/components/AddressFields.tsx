// The shipping address form shared by the signed-in and the guest checkout: the same fields, ids
// (addr-<field>, which the browser journeys fill) and errors beside each field.
import type { ShippingAddressInput } from '../gql/graphql';
import { messageFor, type UserErrorLike } from '../lib/cart';
import { FieldError } from './ui';

export const EMPTY: ShippingAddressInput = { name: '', line1: '', line2: '', city: '', region: '', postalCode: '', country: '', phone: '' };
export const FIELDS: Array<{ key: keyof ShippingAddressInput; label: string; required: boolean; autoComplete: string }> = [
  { key: 'name', label: 'Full name', required: true, autoComplete: 'name' },
  { key: 'line1', label: 'Address line 1', required: true, autoComplete: 'address-line1' },
  { key: 'line2', label: 'Address line 2', required: false, autoComplete: 'address-line2' },
  { key: 'city', label: 'City', required: true, autoComplete: 'address-level2' },
  { key: 'region', label: 'Region', required: false, autoComplete: 'address-level1' },
  { key: 'postalCode', label: 'Postal code', required: true, autoComplete: 'postal-code' },
  { key: 'country', label: 'Country (2 letters)', required: true, autoComplete: 'country' },
  { key: 'phone', label: 'Phone', required: false, autoComplete: 'tel' },
];

/** The address as the API takes it: optional fields left empty become null. */
export function toInput(address: ShippingAddressInput): ShippingAddressInput {
  const out: ShippingAddressInput = { ...address };
  for (const { key, required } of FIELDS) {
    const value = (address[key] ?? '').trim();
    (out as unknown as Record<string, string | null>)[key] = value === '' && !required ? null : value;
  }
  return out;
}

/** The "Shipping address" fieldset; `byField` holds the checkout's userErrors (shippingAddress.<field>). */
export function AddressFields({
  address,
  onChange,
  byField,
}: {
  address: ShippingAddressInput;
  onChange: (address: ShippingAddressInput) => void;
  byField: Map<string, UserErrorLike[]>;
}) {
  return (
    <fieldset>
      <legend>Shipping address</legend>
      {FIELDS.map(({ key, label, required, autoComplete }) => {
        const message = messageFor(byField, `shippingAddress.${key}`);
        return (
          <div className="field" key={key}>
            <label htmlFor={`addr-${key}`}>
              {label}
              {!required && <span className="muted"> (optional)</span>}
            </label>
            <input
              id={`addr-${key}`}
              value={address[key] ?? ''}
              required={required}
              autoComplete={autoComplete}
              onChange={(e) => onChange({ ...address, [key]: e.target.value })}
              aria-describedby={`addr-${key}-error`}
              aria-invalid={message ? true : undefined}
            />
            <FieldError id={`addr-${key}-error`} message={message} />
          </div>
        );
      })}
    </fieldset>
  );
}
