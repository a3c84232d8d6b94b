-- Tenancy: partners, tenants and everything a tenant owns, the vault's sealed keys and secrets,
-- and the consent ledger. Times are Unix milliseconds; flags are 0/1 integers (the same on both
-- backends). On PostgreSQL row-level security is the isolation boundary: every tenant-owned
-- table has RLS enabled and forced, with policies reading transaction-local settings
-- (app.tenant_id, app.partner_id, app.operator) that the host sets inside each transaction; with
-- none set, tenant tables read zero rows. The app role's grants are made by `switchyard migrate`
-- (it knows the role's name); this file runs as the owner.

-- Host-global ------------------------------------------------------------------------------

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- API keys: only the SHA-256 of the secret part is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    secret_hash  BYTEA NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('partner', 'tenant')),
    partner_id   TEXT REFERENCES partners (id),
    tenant_id    TEXT,
    role         TEXT CHECK (role IN ('owner', 'admin', 'agent', 'viewer')),
    label        TEXT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    CHECK ((kind = 'partner' AND partner_id IS NOT NULL AND tenant_id IS NULL AND role IS NULL)
        OR (kind = 'tenant' AND tenant_id IS NOT NULL AND role IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Connector installations that own a webhook URL (a Meta app; one Twilio number).
CREATE TABLE endpoints (
    id          TEXT PRIMARY KEY,
    connector   TEXT NOT NULL,
    owner       TEXT NOT NULL,           -- vault owner scope: 'operator' or 'partner:<id>'
    partner_id  TEXT REFERENCES partners (id),
    tenant_id   TEXT,                    -- set for connection-level endpoints (Twilio)
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE endpoint_keys (
    endpoint_id  TEXT PRIMARY KEY REFERENCES endpoints (id),
    key_version  BIGINT NOT NULL,
    nonce        BYTEA NOT NULL,
    sealed       BYTEA NOT NULL
);

CREATE TABLE endpoint_secrets (
    endpoint_id  TEXT NOT NULL REFERENCES endpoints (id),
    field        TEXT NOT NULL,
    nonce        BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL,
    PRIMARY KEY (endpoint_id, field)
);

-- Which tenant and connection a (webhook endpoint, business address) belongs to: one live owner.
CREATE TABLE routes (
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id),
    channel_address  TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    connection_id    TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, channel_address)
);

-- Tenant-owned --------------------------------------------------------------------------------

CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY,
    partner_id  TEXT REFERENCES partners (id),
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX tenants_partner ON tenants (partner_id);

CREATE TABLE connections (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    id               TEXT PRIMARY KEY,
    connector        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES endpoints (id),
    channel_address  TEXT NOT NULL,
    account_id       TEXT,
    display_name     TEXT,
    settings         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('connecting', 'live', 'expired', 'disconnected', 'error')),
    status_reason    TEXT,
    active           BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    token_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    disconnected_at  BIGINT
);
CREATE INDEX connections_tenant ON connections (tenant_id, id);
-- One live owner per number (a second claim is 409 number_already_connected).
CREATE UNIQUE INDEX connections_live_number ON connections (endpoint_id, channel_address)
    WHERE status <> 'disconnected';

-- The vault: one sealed data key per connection; secrets sealed under it.
CREATE TABLE connection_keys (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT PRIMARY KEY REFERENCES connections (id),
    key_version    BIGINT NOT NULL,
    nonce          BYTEA NOT NULL,
    sealed         BYTEA NOT NULL
);

CREATE TABLE connection_secrets (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    field          TEXT NOT NULL,
    nonce          BYTEA NOT NULL,
    ciphertext     BYTEA NOT NULL,
    expires_at     BIGINT,
    PRIMARY KEY (connection_id, field)
);

CREATE TABLE contacts (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    id                 TEXT PRIMARY KEY,
    connection_id      TEXT NOT NULL REFERENCES connections (id),
    phone              TEXT,
    user_id            TEXT,
    name               TEXT,
    marketing_opt_out  BIGINT NOT NULL DEFAULT 0 CHECK (marketing_opt_out IN (0, 1)),
    created_at         BIGINT NOT NULL,
    last_inbound_at    BIGINT,
    CHECK (phone IS NOT NULL OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX contacts_phone ON contacts (connection_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX contacts_user ON contacts (connection_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX contacts_tenant ON contacts (tenant_id, id);

CREATE TABLE conversations (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    id               TEXT PRIMARY KEY,
    connection_id    TEXT NOT NULL REFERENCES connections (id),
    contact_id       TEXT NOT NULL REFERENCES contacts (id),
    state            TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'archived')),
    ai_enabled       BIGINT NOT NULL DEFAULT 1 CHECK (ai_enabled IN (0, 1)),
    last_inbound_at  BIGINT,
    last_message_at  BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (connection_id, contact_id)
);
CREATE INDEX conversations_inbox ON conversations (tenant_id, last_message_at DESC, id DESC);

CREATE TABLE messages (
    tenant_id            TEXT NOT NULL REFERENCES tenants (tenant_id),
    id                   TEXT PRIMARY KEY,
    conversation_id      TEXT NOT NULL REFERENCES conversations (id),
    connection_id        TEXT NOT NULL REFERENCES connections (id),
    direction            TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    provider_message_id  TEXT,
    kind                 TEXT NOT NULL,
    body                 TEXT,
    status               TEXT NOT NULL CHECK (status IN ('received', 'queued', 'accepted', 'sent', 'delivered', 'read', 'played', 'failed')),
    error_kind           TEXT,
    error_code           TEXT,
    error_message        TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_provider_id ON messages (connection_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id DESC);

CREATE TABLE media (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    id                 TEXT PRIMARY KEY,
    message_id         TEXT NOT NULL REFERENCES messages (id),
    provider_media_id  TEXT,
    url                TEXT,
    mime_type          TEXT,
    caption            TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX media_message ON media (tenant_id, message_id);

-- The tenant's reply policy.
CREATE TABLE policies (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (tenant_id),
    plugin      TEXT NOT NULL,
    config      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Daily aggregates behind the partner report.
CREATE TABLE tenant_counters (
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    day           TEXT NOT NULL,
    messages_in   BIGINT NOT NULL DEFAULT 0,
    messages_out  BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

-- The consent ledger: append-only, one hash chain per tenant.
CREATE TABLE consent_ledger (
    tenant_id         TEXT NOT NULL REFERENCES tenants (tenant_id),
    seq               BIGINT NOT NULL,
    connection_id     TEXT,
    action            TEXT NOT NULL,
    actor             TEXT NOT NULL,
    ip                TEXT,
    user_agent        TEXT,
    document_version  TEXT,
    scopes            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_ledger is append-only';
END
$$;
CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE OR DELETE ON consent_ledger
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_append_only();

-- Row-level security ----------------------------------------------------------------------------

-- tenants: a tenant sees its own row; a partner reads and creates its own tenants; the operator
-- reads and creates any.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY partner_read ON tenants FOR SELECT
    USING (partner_id = current_setting('app.partner_id', true));
CREATE POLICY partner_create ON tenants FOR INSERT
    WITH CHECK (partner_id = current_setting('app.partner_id', true));
CREATE POLICY operator_read ON tenants FOR SELECT
    USING (current_setting('app.operator', true) = 'on');
CREATE POLICY operator_create ON tenants FOR INSERT
    WITH CHECK (current_setting('app.operator', true) = 'on');

-- tenant_counters: the tenant; read-only for its partner and the operator (the report).
ALTER TABLE tenant_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_own ON tenant_counters
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY partner_read ON tenant_counters FOR SELECT
    USING (tenant_id IN (SELECT t.tenant_id FROM tenants t
                         WHERE t.partner_id = current_setting('app.partner_id', true)));
CREATE POLICY operator_read ON tenant_counters FOR SELECT
    USING (current_setting('app.operator', true) = 'on');

-- Everything else a tenant owns: the tenant scope only.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['connections', 'connection_keys', 'connection_secrets', 'contacts',
                             'conversations', 'messages', 'media', 'policies', 'consent_ledger']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_own ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                       'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
