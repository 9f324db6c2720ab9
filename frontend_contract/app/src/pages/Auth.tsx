// Sign in and sign up: each userError shown next to its field (or over the form).
import { useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import {
  CartPageDocument,
  ClaimGuestOrdersDocument,
  LoginDocument,
  MergeGuestCartDocument,
  OrderHistoryDocument,
  RegisterDocument,
  type LoginMutation,
} from '../gql/graphql';
import { ErrorState, FieldError, PageTitle } from '../components/ui';
import { errorsByField, messageFor, type UserErrorLike } from '../lib/cart';
import { useShop } from '../lib/shop';
import { guestCart } from '../lib/guestCart';
import { guestOrders } from '../lib/guestOrders';

type AuthPayload = LoginMutation['login'];

function useFinishSignIn() {
  const { session, client } = useShop();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [mergeGuestCart] = useMutation(MergeGuestCartDocument, { refetchQueries: [CartPageDocument] });
  const [claimGuestOrders] = useMutation(ClaimGuestOrdersDocument);
  return async (payload: AuthPayload) => {
    if (!payload.accessToken || !payload.user) return;
    await client.clearStore(); // what was cached anonymously is not what this user sees
    // The refresh token is not in the payload: the graph set it as an HttpOnly cookie.
    session.signIn({ accessToken: payload.accessToken, expiresIn: payload.expiresIn ?? 900 }, payload.user);
    // A cart filled while signed out joins the account's cart (notices shown once by the shell).
    await guestCart.mergeAfterSignIn(async (cartToken) => {
      const result = await mergeGuestCart({ variables: { input: { cartToken } } });
      return result.data?.mergeGuestCart ?? null;
    });
    // Orders placed here as a guest with this account's address join its order history.
    const claimed = await guestOrders.claimAfterSignIn(async (lookupTokens) => {
      const result = await claimGuestOrders({ variables: { input: { lookupTokens } } });
      return result.data?.claimGuestOrders ?? null;
    });
    if (claimed.length > 0) await client.refetchQueries({ include: [OrderHistoryDocument] }).catch(() => undefined);
    const next = params.get('next');
    navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
  };
}

function Field(props: { id: string; label: string; type?: string; value: string; set: (v: string) => void; error: string | null; autoComplete: string }) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type={props.type ?? 'text'}
        value={props.value}
        required
        autoComplete={props.autoComplete}
        onChange={(e) => props.set(e.target.value)}
        aria-describedby={`${props.id}-error`}
        aria-invalid={props.error ? true : undefined}
      />
      <FieldError id={`${props.id}-error`} message={props.error} />
    </div>
  );
}

export function SignInPage() {
  const [params] = useSearchParams();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [login, { loading, error }] = useMutation(LoginDocument);
  const finish = useFinishSignIn();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await login({ variables: { input: { email, password } } }).catch(() => null);
    const payload = result?.data?.login;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.userErrors.length === 0) await finish(payload);
  };
  const byField = errorsByField(errors);
  return (
    <section className="auth-form">
      <PageTitle>Sign in</PageTitle>
      {params.get('signedOut') === 'everywhere' && (
        <p role="status" className="notice">
          You were signed out on every device.
        </p>
      )}
      <form onSubmit={submit} noValidate>
        <FieldError id="signin-error" message={messageFor(byField, '')} />
        <Field id="signin-email" label="Email" type="email" value={email} set={setEmail} error={messageFor(byField, 'email')} autoComplete="email" />
        <Field
          id="signin-password"
          label="Password"
          type="password"
          value={password}
          set={setPassword}
          error={messageFor(byField, 'password')}
          autoComplete="current-password"
        />
        <button type="submit" className="primary" disabled={loading}>
          {loading ? 'Signing in…' : 'Sign in'}
        </button>
        {error && <ErrorState error={error} />}
      </form>
      <p>
        New here? <Link to="/signup">Create an account</Link> · <Link to="/forgot-password">Forgot your password?</Link>
      </p>
    </section>
  );
}

export function SignUpPage() {
  const [params] = useSearchParams();
  const [name, setName] = useState('');
  const [email, setEmail] = useState(() => params.get('email') ?? ''); // from a guest order's "create an account"
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [register, { loading, error }] = useMutation(RegisterDocument);
  const finish = useFinishSignIn();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await register({ variables: { input: { name, email, password } } }).catch(() => null);
    const payload = result?.data?.register;
    if (!payload) return;
    setErrors(payload.userErrors);
    if (payload.userErrors.length === 0) await finish(payload);
  };
  const byField = errorsByField(errors);
  return (
    <section className="auth-form">
      <PageTitle>Create an account</PageTitle>
      <form onSubmit={submit} noValidate>
        <FieldError id="signup-error" message={messageFor(byField, '')} />
        <Field id="signup-name" label="Name" value={name} set={setName} error={messageFor(byField, 'name')} autoComplete="name" />
        <Field id="signup-email" label="Email" type="email" value={email} set={setEmail} error={messageFor(byField, 'email')} autoComplete="email" />
        <Field
          id="signup-password"
          label="Password"
          type="password"
          value={password}
          set={setPassword}
          error={messageFor(byField, 'password')}
          autoComplete="new-password"
        />
        <button type="submit" className="primary" disabled={loading}>
          {loading ? 'Creating your account…' : 'Create account'}
        </button>
        {error && <ErrorState error={error} />}
      </form>
      <p>
        Have an account? <Link to="/signin">Sign in</Link>
      </p>
    </section>
  );
}
