-- Access policies and the customers' own commands (issue 17, item 7; reference 001): per number
-- open, verified email, or sharing; /login codes by mail; the email a contact proved; the
-- emails a number is shared with; access requests for owners and admins to decide.
ALTER TABLE contacts ADD COLUMN verified_email TEXT;
ALTER TABLE contacts ADD COLUMN verified_at BIGINT;

-- A number's access policy (no row: open).
CREATE TABLE number_access (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL,
    policy         TEXT NOT NULL,        -- open, email, sharing
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);

-- The emails a number is shared with (sharing: only these may talk to its policy).
CREATE TABLE shared_access (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL,
    email          TEXT NOT NULL,        -- lowercase
    added_by       TEXT NOT NULL,        -- key_…, usr_…, or acr_… (an approved request)
    added_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, email)
);

-- The code a contact was mailed by /login, hashed; one at a time per contact.
CREATE TABLE login_codes (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    contact_id     TEXT NOT NULL,
    email          TEXT NOT NULL,
    code_hash      TEXT NOT NULL,        -- SHA-256 (hex) of contact id and code
    expires_at     BIGINT NOT NULL,
    attempts       INTEGER NOT NULL,     -- wrong codes so far
    sent_at        BIGINT NOT NULL,
    sent_count     INTEGER NOT NULL,     -- codes sent since count_since (at most 5 an hour)
    count_since    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, contact_id)
);

CREATE TABLE access_requests (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    id               TEXT PRIMARY KEY,   -- acr_…
    connection_id    TEXT NOT NULL,
    contact_id       TEXT NOT NULL,
    conversation_id  TEXT,
    email            TEXT NOT NULL,
    state            TEXT NOT NULL,      -- pending, approved, refused, withdrawn
    created_at       BIGINT NOT NULL,
    decided_at       BIGINT,
    decided_by       TEXT
);
CREATE UNIQUE INDEX access_requests_pending ON access_requests (tenant_id, connection_id, contact_id)
    WHERE state = 'pending';
CREATE INDEX access_requests_list ON access_requests (tenant_id, id);
CREATE INDEX login_codes_email ON login_codes (tenant_id, email, sent_at);

-- Row-level security: the tenant scope only (the shape of 0002).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['number_access', 'shared_access', 'login_codes', 'access_requests']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_own ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                       'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
