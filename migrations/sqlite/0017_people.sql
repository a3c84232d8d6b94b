-- People (DECISIONS C3): users are host-wide (one email, one account) with memberships in a
-- tenant or a partner, each with one role. Passwords are argon2id PHC strings; sessions,
-- invitations and password resets keep only the SHA-256 of their secret. Like api_keys these
-- are host tables: the host resolves a caller before any tenant scope exists.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE,          -- lower-cased
    name             TEXT NOT NULL,
    password_hash    TEXT,                          -- NULL until an invitation is accepted
    failed_sign_ins  INTEGER NOT NULL DEFAULT 0,     -- consecutive, reset by a good sign-in
    locked_until     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id     TEXT NOT NULL REFERENCES users (id),
    tenant_id   TEXT REFERENCES tenants (tenant_id),
    partner_id  TEXT REFERENCES partners (id),
    role        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CHECK ((tenant_id IS NOT NULL AND partner_id IS NULL AND role IN ('owner', 'admin', 'agent', 'viewer'))
        OR (partner_id IS NOT NULL AND tenant_id IS NULL AND role IN ('owner', 'member')))
);
CREATE UNIQUE INDEX memberships_tenant ON memberships (tenant_id, user_id) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX memberships_partner ON memberships (partner_id, user_id) WHERE partner_id IS NOT NULL;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    token_hash   BLOB NOT NULL,
    email        TEXT NOT NULL,
    tenant_id    TEXT REFERENCES tenants (tenant_id),
    partner_id   TEXT REFERENCES partners (id),
    role         TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER,
    revoked_at   INTEGER,
    CHECK ((tenant_id IS NOT NULL AND partner_id IS NULL AND role IN ('owner', 'admin', 'agent', 'viewer'))
        OR (partner_id IS NOT NULL AND tenant_id IS NULL AND role IN ('owner', 'member')))
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);
CREATE INDEX invitations_partner ON invitations (partner_id, id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    BLOB NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE password_resets (
    id          TEXT PRIMARY KEY,
    token_hash  BLOB NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX password_resets_user ON password_resets (user_id);
