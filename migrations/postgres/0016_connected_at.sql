-- When a connection was last connected (made or renewed by a reconnect): provider account
-- events older than this describe an earlier connection and are ignored.
ALTER TABLE connections ADD COLUMN connected_at BIGINT;
UPDATE connections SET connected_at = created_at;
