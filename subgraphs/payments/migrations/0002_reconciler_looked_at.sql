-- When the reconciler last asked the provider about an open payment. A pass looks at a bounded
-- number of payments, those looked at longest ago first: without this, the same oldest quiet
-- payments (an unpaid order waits up to its deadline) were looked at every pass and the rest never.
ALTER TABLE payments ADD COLUMN looked_at timestamptz;
CREATE INDEX payments_reconcile_idx ON payments (looked_at NULLS FIRST, updated_at)
    WHERE status IN ('PENDING', 'REQUIRES_ACTION', 'AUTHORISED');
