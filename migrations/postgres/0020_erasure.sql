-- Deleting an account (issue 16, item 6): the tenant's row stays as the minimal record (with its
-- ledger and counters), marked with when its data was erased; nobody reaches it afterwards.
ALTER TABLE tenants ADD COLUMN deleted_at BIGINT;
