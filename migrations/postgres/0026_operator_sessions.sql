-- The operator's console sessions: the operator token signs a browser in (the operator stays a
-- token, DECISIONS C3); only the secret's hash is kept, as for people's sessions.
CREATE TABLE operator_sessions (
    id            TEXT PRIMARY KEY,
    token_hash    BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ip            TEXT,
    user_agent    TEXT
);
