-- Receipts (issue 13, items 4 and 5): the tenant and connection a receipt's events were routed
-- to (set by the worker; '*' when one receipt reached several), so a disconnect or a tenant's
-- deletion reaches the raw body; indexes for the retention job and those deletions.
ALTER TABLE receipts ADD COLUMN tenant_id TEXT;
ALTER TABLE receipts ADD COLUMN connection_id TEXT;
CREATE INDEX receipts_received ON receipts (received_at);
CREATE INDEX receipts_tenant ON receipts (tenant_id) WHERE tenant_id IS NOT NULL;
CREATE INDEX receipts_connection ON receipts (connection_id) WHERE connection_id IS NOT NULL;

-- Secrets stored before redaction existed: handshake URLs kept hub.verify_token in plain text,
-- and refused requests kept every header (authorization, cookies).
UPDATE receipts SET url = split_part(url, '?', 1) || '?[redacted]'
 WHERE position('?' in url) > 0 AND (lower(url) LIKE '%token%' OR lower(url) LIKE '%secret%' OR lower(url) LIKE '%password%');
UPDATE receipts SET headers = '[]' WHERE outcome <> 'accepted';
