-- Per-organization reads of $all (audit) in commit order.
CREATE INDEX events_tenant_commit_order_idx ON events (tenant_id, transaction_id, global_position);
