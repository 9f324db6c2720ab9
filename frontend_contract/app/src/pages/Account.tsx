// The account page: profile (name, email), mail, password, sessions, and saved addresses (add, edit,
// make default, remove).
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client';
import { useNavigate } from 'react-router-dom';
import {
  AccountPageDocument,
  AddAddressDocument,
  ChangePasswordDocument,
  DeleteAddressDocument,
  SignOutEverywhereDocument,
  UpdateAddressDocument,
  UpdateMailPreferencesDocument,
  UpdateProfileDocument,
  type AccountPageQuery,
} from '../gql/graphql';
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
type SavedAddress = NonNullable<AccountPageQuery['me']>['addresses'][number];

function ChangePassword() {
  const { session } = useShop();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState(false);
  const [change, { loading, error }] = useMutation(ChangePasswordDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    if (next !== confirm) {
      setErrors([{ code: 'INVALID', field: ['input', 'confirm'], message: 'The two passwords differ.' }]);
      return;
    }
    const result = await change({ variables: { input: { currentPassword: current, newPassword: next } } }).catch(() => null);
    const payload = result?.data?.changePassword;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.userErrors.length > 0 || !payload.accessToken || !payload.user) return;
    // This session goes on with the new tokens (the refresh token is the cookie the answer set).
    session.signIn({ accessToken: payload.accessToken, expiresIn: payload.expiresIn ?? 900 }, payload.user);
    setCurrent('');
    setNext('');
    setConfirm('');
    setDone(true);
  };
  const byField = errorsByField(errors);
  return (
    <form onSubmit={submit} aria-labelledby="password-heading" noValidate>
      <h2 id="password-heading">Password</h2>
      <div className="field">
        <label htmlFor="password-current">Current password</label>
        <input
          id="password-current"
          type="password"
          value={current}
          required
          autoComplete="current-password"
          onChange={(e) => setCurrent(e.target.value)}
          aria-describedby="password-current-error"
        />
        <FieldError id="password-current-error" message={messageFor(byField, 'currentPassword')} />
      </div>
      <div className="field">
        <label htmlFor="password-new">New password</label>
        <input
          id="password-new"
          type="password"
          value={next}
          required
          autoComplete="new-password"
          onChange={(e) => setNext(e.target.value)}
          aria-describedby="password-new-error"
        />
        <FieldError id="password-new-error" message={messageFor(byField, 'newPassword')} />
      </div>
      <div className="field">
        <label htmlFor="password-confirm">New password again</label>
        <input
          id="password-confirm"
          type="password"
          value={confirm}
          required
          autoComplete="new-password"
          onChange={(e) => setConfirm(e.target.value)}
          aria-describedby="password-confirm-error"
        />
        <FieldError id="password-confirm-error" message={messageFor(byField, 'confirm')} />
      </div>
      <FieldError id="password-error" message={messageFor(byField, '')} />
      {error && <ErrorState error={error} />}
      <button type="submit" disabled={loading}>
        {loading ? 'Changing…' : 'Change password'}
      </button>
      {done && (
        <p role="status" className="notice" data-testid="password-changed">
          Password changed. Every other session was signed out; this one stays signed in.
        </p>
      )}
    </form>
  );
}

function Sessions() {
  const { session, client } = useShop();
  const navigate = useNavigate();
  const [signOutEverywhere, { loading, error, data }] = useMutation(SignOutEverywhereDocument);
  const problem = data?.signOutEverywhere.userErrors.map((e) => e.message).join(' ') || null;
  const run = async () => {
    const result = await signOutEverywhere().catch(() => null);
    if (!result?.data?.signOutEverywhere.ok) return;
    session.signOut();
    await client.clearStore();
    navigate('/signin?signedOut=everywhere');
  };
  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Sessions</h2>
      <p className="muted">Signed in on a shared or lost device? End every session of your account, this one included.</p>
      <button type="button" onClick={run} disabled={loading}>
        Sign out everywhere
      </button>
      <FieldError id="sessions-error" message={problem} />
      {error && <ErrorState error={error} />}
    </section>
  );
}

function EditAddress({ address, done }: { address: SavedAddress; done: () => void }) {
  const [form, setForm] = useState<AddressForm>({
    name: address.name,
    line1: address.line1,
    city: address.city,
    postalCode: address.postalCode,
    country: address.country,
  });
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [update, { loading, error }] = useMutation(UpdateAddressDocument, { refetchQueries: [AccountPageDocument], awaitRefetchQueries: true });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await update({ variables: { input: { id: address.id, ...form } } }).catch(() => null);
    const payload = result?.data?.updateAddress;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.userErrors.length === 0) done();
  };
  const byField = errorsByField(errors);
  const id = (key: string) => `edit-${address.id}-${key}`;
  return (
    <form onSubmit={submit} aria-label={`Edit the address ${address.line1}`} className="edit-address">
      {ADDRESS_FIELDS.map(([key, label]) => (
        <div className="field" key={key}>
          <label htmlFor={id(key)}>{label}</label>
          <input id={id(key)} value={form[key]} required onChange={(e) => setForm({ ...form, [key]: e.target.value })} aria-describedby={id(`${key}-error`)} />
          <FieldError id={id(`${key}-error`)} message={messageFor(byField, key)} />
        </div>
      ))}
      <FieldError id={id('error')} message={messageFor(byField, '')} />
      {error && <ErrorState error={error} />}
      <button type="submit" disabled={loading}>
        Save address
      </button>{' '}
      <button type="button" className="link-button" onClick={done}>
        Cancel
      </button>
    </form>
  );
}

function SavedAddresses({ addresses }: { addresses: SavedAddress[] }) {
  const [editing, setEditing] = useState<string | null>(null);
  // Each change is busy until the list is read again: a read still in flight from one change could
  // otherwise answer after the next change's and put a removed address back on the page.
  const refetched = { refetchQueries: [AccountPageDocument], awaitRefetchQueries: true };
  const [remove, removing] = useMutation(DeleteAddressDocument, refetched);
  const [makeDefault, defaulting] = useMutation(UpdateAddressDocument, refetched);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => setProblem(removing.data?.deleteAddress.userErrors.map((e) => e.message).join(' ') || null), [removing.data]);
  useEffect(() => setProblem(defaulting.data?.updateAddress.userErrors.map((e) => e.message).join(' ') || null), [defaulting.data]);
  const busy = removing.loading || defaulting.loading;
  return (
    <>
      {addresses.length === 0 && <p>No saved addresses.</p>}
      <ul className="addresses">
        {addresses.map((a) => (
          <li key={a.id} data-testid="saved-address">
            {editing === a.id ? (
              <EditAddress address={a} done={() => setEditing(null)} />
            ) : (
              <>
                <address>
                  {a.name}, {a.line1}
                  {a.line2 ? `, ${a.line2}` : ''}, {a.postalCode} {a.city}, {a.country}
                </address>
                {a.isDefault && <span className="badge">Default</span>}
                <button type="button" className="link-button" onClick={() => setEditing(a.id)}>
                  Edit<span className="visually-hidden"> the address {a.line1}</span>
                </button>
                {!a.isDefault && (
                  <button
                    type="button"
                    className="link-button"
                    disabled={busy}
                    onClick={() => makeDefault({ variables: { input: { id: a.id, isDefault: true } } }).catch(() => null)}
                  >
                    Make default<span className="visually-hidden"> the address {a.line1}</span>
                  </button>
                )}
                <button type="button" className="link-button" disabled={busy} onClick={() => remove({ variables: { input: { id: a.id } } }).catch(() => null)}>
                  Remove<span className="visually-hidden"> the address {a.line1}</span>
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
      <FieldError id="address-action-error" message={problem} />
    </>
  );
}

function AddAddress() {
  const [form, setForm] = useState<AddressForm>(BLANK);
  const [isDefault, setIsDefault] = useState(false);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [add, { loading, error }] = useMutation(AddAddressDocument, { refetchQueries: [AccountPageDocument], awaitRefetchQueries: true });
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
      <ChangePassword />
      <Sessions />
      <section aria-labelledby="addresses-heading">
        <h2 id="addresses-heading">Addresses</h2>
        <SavedAddresses addresses={me.addresses} />
        <AddAddress />
      </section>
    </>
  );
}
