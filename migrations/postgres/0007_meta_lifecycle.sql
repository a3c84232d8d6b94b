-- Meta connector lifecycle: inbound media downloaded by a job of its own and kept in the
-- database, and the templates each connection's account may send.

-- Media: `pending` until its fetch-media job stored the bytes (`stored`) or gave up (`failed`).
ALTER TABLE media ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'stored', 'failed'));
ALTER TABLE media ADD COLUMN provider_sha256 TEXT;   -- as the provider gave it (hex or base64)
ALTER TABLE media ADD COLUMN sha256 TEXT;            -- hex SHA-256 of the stored bytes
ALTER TABLE media ADD COLUMN size_bytes BIGINT;
ALTER TABLE media ADD COLUMN error TEXT;
ALTER TABLE media ADD COLUMN fetched_at BIGINT;

-- The downloaded bytes, one row per stored media row.
CREATE TABLE media_content (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    media_id   TEXT PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
    body       BYTEA NOT NULL
);
CREATE INDEX media_content_tenant ON media_content (tenant_id, media_id);

-- The connection's templates as last listed by its connector; only `APPROVED` ones are sent.
CREATE TABLE templates (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    name           TEXT NOT NULL,
    language       TEXT NOT NULL,
    category       TEXT NOT NULL,
    status         TEXT NOT NULL,
    provider_id    TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, name, language)
);
CREATE INDEX templates_tenant ON templates (tenant_id, connection_id);

-- Row-level security: the tenant scope only (the shape of 0002).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['media_content', 'templates']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_own ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                       'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
