// Forgotten passwords: ask for a link (/forgot-password), then choose a new password on the page the
// mailed link opens (/reset-password?token=…). The token is spent once; every session ends with it.
import { useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client';
import { Link, useSearchParams } from 'react-router-dom';
import { RequestPasswordResetDocument, ResetPasswordDocument } from '../gql/graphql';
import { ErrorState, FieldError, PageTitle } from '../components/ui';
import { errorsByField, messageFor, type UserErrorLike } from '../lib/cart';

export function ForgotPasswordPage() {
  const [email, setEmail] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [sent, setSent] = useState(false);
  const [request, { loading, error }] = useMutation(RequestPasswordResetDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const result = await request({ variables: { input: { email } } }).catch(() => null);
    const payload = result?.data?.requestPasswordReset;
    if (!payload) return;
    setErrors(payload.userErrors);
    setSent(payload.ok);
  };
  const byField = errorsByField(errors);
  if (sent) {
    return (
      <section className="auth-form">
        <PageTitle>Check your mail</PageTitle>
        <p role="status">If {email} has an account, a link to choose a new password is on its way. It works once, for 30 minutes.</p>
      </section>
    );
  }
  return (
    <section className="auth-form">
      <PageTitle>Forgot your password?</PageTitle>
      <form onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor="forgot-email">Email</label>
          <input
            id="forgot-email"
            type="email"
            value={email}
            required
            autoComplete="email"
            onChange={(e) => setEmail(e.target.value)}
            aria-describedby="forgot-email-error"
          />
          <FieldError id="forgot-email-error" message={messageFor(byField, 'email')} />
        </div>
        <FieldError id="forgot-error" message={messageFor(byField, '')} />
        <button type="submit" className="primary" disabled={loading}>
          {loading ? 'Sending…' : 'Mail me a link'}
        </button>
        {error && <ErrorState error={error} />}
      </form>
    </section>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState(false);
  const [reset, { loading, error }] = useMutation(ResetPasswordDocument);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== confirm) {
      setErrors([{ code: 'INVALID', field: ['input', 'confirm'], message: 'The two passwords differ.' }]);
      return;
    }
    const result = await reset({ variables: { input: { token, newPassword: password } } }).catch(() => null);
    const payload = result?.data?.resetPassword;
    if (!payload) return;
    setErrors(payload.userErrors);
    setDone(payload.ok && payload.userErrors.length === 0);
  };
  const byField = errorsByField(errors);
  if (!token) {
    return (
      <section className="auth-form">
        <PageTitle>Reset your password</PageTitle>
        <p role="alert">
          This link has no reset token. <Link to="/forgot-password">Ask for a new link</Link>.
        </p>
      </section>
    );
  }
  if (done) {
    return (
      <section className="auth-form">
        <PageTitle>Password changed</PageTitle>
        <p role="status">
          Your new password is set and every session was signed out. <Link to="/signin">Sign in</Link>
        </p>
      </section>
    );
  }
  const tokenError = messageFor(byField, 'token');
  return (
    <section className="auth-form">
      <PageTitle>Choose a new password</PageTitle>
      <form onSubmit={submit} noValidate>
        <FieldError id="reset-error" message={tokenError ?? messageFor(byField, '')} />
        {tokenError && (
          <p>
            <Link to="/forgot-password">Ask for a new link</Link>
          </p>
        )}
        <div className="field">
          <label htmlFor="reset-password">New password</label>
          <input
            id="reset-password"
            type="password"
            value={password}
            required
            autoComplete="new-password"
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby="reset-password-error"
          />
          <FieldError id="reset-password-error" message={messageFor(byField, 'newPassword')} />
        </div>
        <div className="field">
          <label htmlFor="reset-confirm">New password again</label>
          <input
            id="reset-confirm"
            type="password"
            value={confirm}
            required
            autoComplete="new-password"
            onChange={(e) => setConfirm(e.target.value)}
            aria-describedby="reset-confirm-error"
          />
          <FieldError id="reset-confirm-error" message={messageFor(byField, 'confirm')} />
        </div>
        <button type="submit" className="primary" disabled={loading}>
          {loading ? 'Saving…' : 'Set new password'}
        </button>
        {error && <ErrorState error={error} />}
      </form>
    </section>
  );
}
