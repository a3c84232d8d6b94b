-- A channel address is live in one tenant only, host-wide (not only per endpoint: each Twilio
-- connection has its own endpoint), and a route knows its provider account, so a disconnect
-- can see whether another tenant's live number still uses the same Meta WABA.
ALTER TABLE routes ADD COLUMN connector TEXT;
ALTER TABLE routes ADD COLUMN account_id TEXT;
UPDATE routes SET connector = e.connector FROM endpoints e WHERE e.id = routes.endpoint_id;
-- connections is tenant-owned with forced row-level security: read it one tenant at a time.
DO $$
DECLARE t TEXT;
BEGIN
    FOR t IN SELECT DISTINCT tenant_id FROM routes LOOP
        PERFORM set_config('app.tenant_id', t, true);
        UPDATE routes SET account_id = c.account_id
          FROM connections c
         WHERE c.id = routes.connection_id AND routes.tenant_id = t;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END $$;
CREATE UNIQUE INDEX routes_live_address ON routes (connector, channel_address);
CREATE INDEX routes_account ON routes (connector, account_id);
