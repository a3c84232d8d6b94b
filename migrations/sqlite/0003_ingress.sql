-- Ingress: a receipt for every webhook request, and the job queue that processes them.
-- Host-global (no tenant is known before the connector parses the request).

CREATE TABLE receipts (
    id           TEXT PRIMARY KEY,
    endpoint_id  TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    method       TEXT NOT NULL,
    url          TEXT NOT NULL,
    headers      TEXT NOT NULL,                 -- JSON [[name, value], …]
    body_sha256  TEXT,                          -- absent when the body was never read (413)
    body         BLOB,                          -- kept for accepted requests only
    outcome      TEXT NOT NULL CHECK (outcome IN ('accepted', 'responded', 'rejected', 'too-large', 'failed')),
    status       INTEGER NOT NULL,              -- what the provider was answered
    reason       TEXT
);
CREATE INDEX receipts_endpoint ON receipts (endpoint_id, received_at);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    receipt_id   TEXT REFERENCES receipts (id),
    payload      TEXT NOT NULL DEFAULT '{}',
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
