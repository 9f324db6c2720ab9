-- Access tokens issued before this time no longer speak for the account
-- (kit/revocation.py): moved forward by a password change or reset, a role
-- change and "sign out everywhere".
ALTER TABLE users ADD COLUMN sessions_valid_after timestamptz NOT NULL DEFAULT 'epoch';

-- One-time password reset tokens: only a hash is kept; single use, short-lived.
CREATE TABLE password_resets (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- Mail to send, written in the transaction of what caused it; a mailer drains
-- it (`shopgraph dev` prints each message to the console).
CREATE TABLE mail_outbox (
    id         bigserial PRIMARY KEY,
    recipient  text NOT NULL CHECK (length(recipient) <= 254),
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX mail_outbox_unsent_idx ON mail_outbox (id) WHERE sent_at IS NULL;
