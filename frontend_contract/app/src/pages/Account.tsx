// The account page: profile (name, email) and saved addresses (add, remove).
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { AccountPageDocument, AddAddressDocument, DeleteAddressDocument, UpdateMailPreferencesDocument, UpdateProfileDocument } from '../gql/graphql';
import { ErrorState, FieldError, Loading, PageTitle } from '../components/ui';
import { errorsByField, messageFor, type UserErrorLike } from '../lib/cart';
import { useShop } from '../lib/shop';

function Profile({ name: initialName, email: initialEmail }: { name: string; email: string }) {
  const { session } = useShop();
  const [name, setName] = useState(initialName);
  const [email, setEmail] = useState(initialEmail);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [saved, setSaved] = useState(false);
  const [update, { loading, error }] = useMutation(UpdateProfileDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await update({ variables: { input: { name, email } } }).catch(() => null);
    const payload = result?.data?.updateProfile;
    if (!payload) return;
    setErrors(payload.userErrors);
    setSaved(payload.userErrors.length === 0);
    if (payload.user) session.updateUser({ name: payload.user.name, email: payload.user.email });
  };
  const byField = errorsByField(errors);
  return (
    <form onSubmit={submit} aria-labelledby="profile-heading">
      <h2 id="profile-heading">Profile</h2>
      <div className="field">
        <label htmlFor="profile-name">Name</label>
        <input id="profile-name" value={name} onChange={(e) => setName(e.target.value)} autoComplete="name" aria-describedby="profile-name-error" />
        <FieldError id="profile-name-error" message={messageFor(byField, 'name')} />
      </div>
      <div className="field">
        <label htmlFor="profile-email">Email</label>
        <input
          id="profile-email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoComplete="email"
          aria-describedby="profile-email-error"
        />
        <FieldError id="profile-email-error" message={messageFor(byField, 'email')} />
      </div>
      <FieldError id="profile-error" message={messageFor(byField, '')} />
      {error && <ErrorState error={error} />}
      <button type="submit" disabled={loading}>
        Save profile
      </button>
      {saved && (
        <p role="status" className="notice">
          Saved.
        </p>
      )}
    </form>
  );
}

function MailPreferences({ orderUpdateEmails }: { orderUpdateEmails: boolean }) {
  const [update, { loading, error, data }] = useMutation(UpdateMailPreferencesDocument);
  const current = data?.updateMailPreferences.user?.orderUpdateEmails ?? orderUpdateEmails;
  return (
    <section aria-labelledby="mail-heading">
      <h2 id="mail-heading">Mail</h2>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={current}
          disabled={loading}
          onChange={(e) => update({ variables: { input: { orderUpdateEmails: e.target.checked } } }).catch(() => null)}
        />{' '}
        Mail me when my orders ship and arrive
      </label>
      <p className="muted">Order confirmations, payment and cancellation notices and password resets are always sent.</p>
      {error && <ErrorState error={error} />}
    </section>
  );
}

const ADDRESS_FIELDS = [
  ['name', 'Name'],
  ['line1', 'Address line 1'],
  ['city', 'City'],
  ['postalCode', 'Postal code'],
  ['country', 'Country (2 letters)'],
] as const;
type AddressForm = Record<(typeof ADDRESS_FIELDS)[number][0], string>;
const BLANK: AddressForm = { name: '', line1: '', city: '', postalCode: '', country: '' };

function AddAddress() {
  const [form, setForm] = useState<AddressForm>(BLANK);
  const [isDefault, setIsDefault] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [add, { loading, error }] = useMutation(AddAddressDocument, { refetchQueries: [AccountPageDocument] });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await add({ variables: { input: { ...form, isDefault } } }).catch(() => null);
    const payload = result?.data?.addAddress;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.userErrors.length === 0) setForm(BLANK);
  };
  const byField = errorsByField(errors);
  return (
    <form onSubmit={submit} aria-labelledby="add-address-heading">
      <h3 id="add-address-heading">Add an address</h3>
      {ADDRESS_FIELDS.map(([key, label]) => (
        <div className="field" key={key}>
          <label htmlFor={`new-${key}`}>{label}</label>
          <input
            id={`new-${key}`}
            value={form[key]}
            required
            onChange={(e) => setForm({ ...form, [key]: e.target.value })}
            aria-describedby={`new-${key}-error`}
          />
          <FieldError id={`new-${key}-error`} message={messageFor(byField, key)} />
        </div>
      ))}
      <label className="checkbox">
        <input type="checkbox" checked={isDefault} onChange={(e) => setIsDefault(e.target.checked)} /> Make it my default address
      </label>
      <FieldError id="new-address-error" message={messageFor(byField, '')} />
      {error && <ErrorState error={error} />}
      <button type="submit" disabled={loading}>
        Add address
      </button>
    </form>
  );
}

export function AccountPage() {
  const { data, loading, error, refetch } = useQuery(AccountPageDocument);
  const [remove, removing] = useMutation(DeleteAddressDocument, { refetchQueries: [AccountPageDocument] });
  const [removeError, setRemoveError] = useState<string | null>(null);
  useEffect(() => setRemoveError(removing.data?.deleteAddress.userErrors.map((e) => e.message).join(' ') || null), [removing.data]);
  if (loading) return <Loading what="Loading your account" />;
  if (error) return <ErrorState error={error} retry={() => refetch()} />;
  const me = data?.me;
  if (!me) return <p role="alert">You are signed out.</p>;
  return (
    <>
      <PageTitle>Your account</PageTitle>
      <p className="muted">
        Member since {new Date(me.createdAt).toLocaleDateString()} · {me.role === 'ADMIN' ? 'Administrator' : 'Customer'}
      </p>
      <Profile name={me.name} email={me.email} />
      <MailPreferences orderUpdateEmails={me.orderUpdateEmails} />
      <section aria-labelledby="addresses-heading">
        <h2 id="addresses-heading">Addresses</h2>
        {me.addresses.length === 0 && <p>No saved addresses.</p>}
        <ul className="addresses">
          {me.addresses.map((a) => (
            <li key={a.id}>
              <address>
                {a.name}, {a.line1}
                {a.line2 ? `, ${a.line2}` : ''}, {a.postalCode} {a.city}, {a.country}
              </address>
              {a.isDefault && <span className="badge">Default</span>}
              <button type="button" className="link-button" disabled={removing.loading} onClick={() => remove({ variables: { input: { id: a.id } } })}>
                Remove<span className="visually-hidden"> the address {a.line1}</span>
              </button>
            </li>
          ))}
        </ul>
        <FieldError id="remove-address-error" message={removeError} />
        <AddAddress />
      </section>
    </>
  );
}
