-- Access policies and the customers' own commands (issue 17, item 7; reference 001): per number
-- open, verified email, or sharing; /login codes by mail; the email a contact proved; the
-- emails a number is shared with; access requests for owners and admins to decide.
ALTER TABLE contacts ADD COLUMN verified_email TEXT;
ALTER TABLE contacts ADD COLUMN verified_at INTEGER;

-- A number's access policy (no row: open).
CREATE TABLE number_access (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL,
    policy         TEXT NOT NULL,        -- open, email, sharing
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);

-- The emails a number is shared with (sharing: only these may talk to its policy).
CREATE TABLE shared_access (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    connection_id  TEXT NOT NULL,
    email          TEXT NOT NULL,        -- lowercase
    added_by       TEXT NOT NULL,        -- key_…, usr_…, or acr_… (an approved request)
    added_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, email)
);

-- The code a contact was mailed by /login, hashed; one at a time per contact.
CREATE TABLE login_codes (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    contact_id     TEXT NOT NULL,
    email          TEXT NOT NULL,
    code_hash      TEXT NOT NULL,        -- SHA-256 (hex) of contact id and code
    expires_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL,     -- wrong codes so far
    sent_at        INTEGER NOT NULL,
    sent_count     INTEGER NOT NULL,     -- codes sent since count_since (at most 5 an hour)
    count_since    INTEGER NOT NULL,
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
    created_at       INTEGER NOT NULL,
    decided_at       INTEGER,
    decided_by       TEXT
);
CREATE UNIQUE INDEX access_requests_pending ON access_requests (tenant_id, connection_id, contact_id)
    WHERE state = 'pending';
CREATE INDEX access_requests_list ON access_requests (tenant_id, id);
CREATE INDEX login_codes_email ON login_codes (tenant_id, email, sent_at);
