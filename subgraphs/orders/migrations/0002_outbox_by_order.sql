-- orderUpdated starts with an order's latest event: find it without a scan.
CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_id, id);
