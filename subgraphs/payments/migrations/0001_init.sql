-- One payment per order: what the shopper owes, where the provider is with it,
-- and what was captured and refunded (integer minor units).
CREATE TABLE payments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid NOT NULL UNIQUE,
    order_number    text NOT NULL,
    user_id         uuid NOT NULL,
    provider        text NOT NULL,
    -- The provider's object (a PaymentIntent id), once it has been created.
    provider_ref    text UNIQUE,
    client_secret   text,
    next_action_url text,
    status          text NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'REQUIRES_ACTION', 'AUTHORISED', 'CAPTURED', 'FAILED', 'CANCELLED')),
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    currency        char(3) NOT NULL,
    captured_minor  bigint NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    refunded_minor  bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor),
    method_summary  text,
    failure_reason  text,
    -- The order was cancelled: an authorisation is voided, a capture refunded.
    order_cancelled boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_open_idx ON payments (updated_at) WHERE status IN ('PENDING', 'REQUIRES_ACTION', 'AUTHORISED');

-- What happened to a payment, oldest first: attempts, outcomes, captures, refunds.
CREATE TABLE payment_history (
    id                bigserial PRIMARY KEY,
    payment_id        uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    kind              text NOT NULL,
    amount_minor      bigint,
    detail            text,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_history_payment_idx ON payment_history (payment_id, id);

-- Provider events (webhooks) already applied: a duplicate with the same id changes nothing.
CREATE TABLE provider_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- Calls to the provider still to make (or made): each has its own idempotency key
-- (its id), so a retry after a crash is the same call, never a second capture.
CREATE TABLE payment_actions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id      uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('capture', 'cancel', 'refund')),
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);
-- At most one capture and one cancel per payment, ever.
CREATE UNIQUE INDEX payment_actions_once_idx ON payment_actions (payment_id, kind) WHERE kind IN ('capture', 'cancel');
CREATE INDEX payment_actions_pending_idx ON payment_actions (next_attempt_at) WHERE status = 'pending';

-- How far this subgraph has read the orders stream (kit/consumer.py).
CREATE TABLE stream_positions (
    stream     text PRIMARY KEY,
    last_id    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: payment.* events, relayed to <prefix>payments:events.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_id, id);

-- The `test` provider's own books (it stands in for an external service: only
-- providers/test.py reads or writes these).
CREATE TABLE testpay_intents (
    id             text PRIMARY KEY,
    secret         text NOT NULL,
    amount_minor   bigint NOT NULL,
    currency       char(3) NOT NULL,
    status         text NOT NULL,
    captured_minor bigint NOT NULL DEFAULT 0,
    refunded_minor bigint NOT NULL DEFAULT 0,
    card_brand     text,
    card_last4     text,
    failure        text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE testpay_requests (
    idempotency_key text PRIMARY KEY,
    response        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
