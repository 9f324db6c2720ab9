-- A cart is checked out once: a checkout claims the cart before it reads its
-- lines, and a concurrent checkout under another idempotency key is refused
-- until the claim is completed, released, or abandoned (older than the hold).
ALTER TABLE carts ADD COLUMN checkout_id uuid;
ALTER TABLE carts ADD COLUMN checkout_started_at timestamptz;
