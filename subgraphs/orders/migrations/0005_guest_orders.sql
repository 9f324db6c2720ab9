-- Guest checkout (issue 17): an order placed without an account carries the e-mail it was placed
-- with; its user_id is the guest's customer id (uuid5 of the address, no account has it) until an
-- account with that address claims it (user_id becomes the account's, claimed_at is set).
ALTER TABLE orders ADD COLUMN guest_email text;
ALTER TABLE orders ADD COLUMN claimed_at timestamptz;
