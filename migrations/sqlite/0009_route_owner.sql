-- A channel address is live in one tenant only, host-wide (not only per endpoint: each Twilio
-- connection has its own endpoint), and a route knows its provider account, so a disconnect
-- can see whether another tenant's live number still uses the same Meta WABA.
ALTER TABLE routes ADD COLUMN connector TEXT;
ALTER TABLE routes ADD COLUMN account_id TEXT;
UPDATE routes SET connector = (SELECT e.connector FROM endpoints e WHERE e.id = routes.endpoint_id);
UPDATE routes SET account_id = (SELECT c.account_id FROM connections c WHERE c.id = routes.connection_id);
CREATE UNIQUE INDEX routes_live_address ON routes (connector, channel_address);
CREATE INDEX routes_account ON routes (connector, account_id);
