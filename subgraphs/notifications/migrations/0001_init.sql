-- The notifications worker's own records (schema "notifications"; it reads no other schema).

-- How far each event stream has been taken in: advanced in the transaction that
-- records the deliveries its events cause, so a restart resumes exactly there.
CREATE TABLE stream_cursors (
    stream     text PRIMARY KEY,
    last_id    bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per message to send. The idempotency key (event id + template, or order
-- id + template for once-per-order mail) is unique: a redelivered event adds nothing.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    stream           text NOT NULL,
    event_id         bigint NOT NULL,
    event_type       text NOT NULL,
    template         text NOT NULL,
    transactional    boolean NOT NULL,
    user_id          uuid,
    -- Set from the event when it names the address (password reset), else resolved
    -- from users at each attempt and kept once sent.
    recipient        text,
    context          jsonb NOT NULL,
    traceparent      text,
    message_id       text NOT NULL,
    event_created_at timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'suppressed', 'skipped', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    -- A sender that claimed the row; another may take it once this has passed.
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_event_idx ON deliveries (stream, event_id);

-- Messages given up on after the last attempt (or a permanent refusal): for an operator.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint NOT NULL UNIQUE REFERENCES deliveries (id),
    idempotency_key text NOT NULL,
    template        text NOT NULL,
    recipient       text,
    attempts        integer NOT NULL,
    last_error      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
