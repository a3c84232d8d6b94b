-- Meta onboarding sessions (the redirect flow and Embedded Signup): one row per attempt to
-- connect numbers through Meta. The user's token lives only in the vault, sealed under the
-- session's own data key (meta_onboarding_keys/_secrets), and is shredded when the session
-- completes, fails or expires. The state parameter is never stored, only the SHA-256 of its nonce.

CREATE TABLE meta_onboarding_sessions (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    id                 TEXT PRIMARY KEY,
    endpoint_id        TEXT NOT NULL REFERENCES endpoints (id),
    flow               TEXT NOT NULL CHECK (flow IN ('redirect', 'embedded')),
    state_hash         BYTEA,
    actor              TEXT NOT NULL,
    ip                 TEXT,
    user_agent         TEXT,
    consent_version    TEXT,
    consent_scopes     TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('started', 'picking', 'completed', 'failed')),
    discovered         TEXT,
    error_code         TEXT,
    connection_id      TEXT,
    token_expires_at   BIGINT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX meta_onboarding_sessions_tenant ON meta_onboarding_sessions (tenant_id, expires_at);

CREATE TABLE meta_onboarding_keys (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    session_id   TEXT PRIMARY KEY REFERENCES meta_onboarding_sessions (id),
    key_version  BIGINT NOT NULL,
    nonce        BYTEA NOT NULL,
    sealed       BYTEA NOT NULL
);

CREATE TABLE meta_onboarding_secrets (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    session_id   TEXT NOT NULL REFERENCES meta_onboarding_sessions (id),
    field        TEXT NOT NULL,
    nonce        BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL,
    expires_at   BIGINT,
    PRIMARY KEY (session_id, field)
);

-- Tenant-owned: the tenant scope only (the same policy shape as 0002).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['meta_onboarding_sessions', 'meta_onboarding_keys', 'meta_onboarding_secrets']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_own ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                       'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
