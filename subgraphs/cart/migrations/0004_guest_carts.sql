-- Guest carts: a cart with no user, reached with a signed cart token. At
-- sign-in it is merged into the account's cart once and is dead from then on
-- (merged_at): its token, even a stolen copy, opens nothing.
ALTER TABLE carts ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE carts ADD COLUMN merged_into uuid;
ALTER TABLE carts ADD COLUMN merged_at timestamptz;
