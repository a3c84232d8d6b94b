-- Meta onboarding sessions (the redirect flow and Embedded Signup): one row per attempt to
-- connect numbers through Meta. The user's token lives only in the vault, sealed under the
-- session's own data key (meta_onboarding_keys/_secrets), and is shredded when the session
-- completes, fails or expires. The state parameter is never stored, only the SHA-256 of its nonce.

CREATE TABLE meta_onboarding_sessions (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    id                 TEXT PRIMARY KEY,
    endpoint_id        TEXT NOT NULL REFERENCES endpoints (id),
    flow               TEXT NOT NULL CHECK (flow IN ('redirect', 'embedded')),
    state_hash         BLOB,
    actor              TEXT NOT NULL,
    ip                 TEXT,
    user_agent         TEXT,
    consent_version    TEXT,
    consent_scopes     TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('started', 'picking', 'completed', 'failed')),
    discovered         TEXT,
    error_code         TEXT,
    connection_id      TEXT,
    token_expires_at   INTEGER,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX meta_onboarding_sessions_tenant ON meta_onboarding_sessions (tenant_id, expires_at);

CREATE TABLE meta_onboarding_keys (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    session_id   TEXT PRIMARY KEY REFERENCES meta_onboarding_sessions (id),
    key_version  INTEGER NOT NULL,
    nonce        BLOB NOT NULL,
    sealed       BLOB NOT NULL
);

CREATE TABLE meta_onboarding_secrets (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    session_id   TEXT NOT NULL REFERENCES meta_onboarding_sessions (id),
    field        TEXT NOT NULL,
    nonce        BLOB NOT NULL,
    ciphertext   BLOB NOT NULL,
    expires_at   INTEGER,
    PRIMARY KEY (session_id, field)
);
