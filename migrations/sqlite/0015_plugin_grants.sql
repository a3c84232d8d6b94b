-- Egress grants per plugin version (issue 14, item 5; DECISIONS A6): a partner's version may
-- reach only the hosts its manifest requests and the operator granted to that very version.
-- Bundled, directory and operator-uploaded versions have every requested host.
CREATE TABLE plugin_grants (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    host        TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (name, version, host)
);

-- A failure policy per plugin name (issue 14, item 3): when the promoted version faults (traps,
-- CPU deadline, memory cap) on more than max_fault_pct percent of at least min_calls calls
-- within window_secs on a host, that host rolls the name back to its previous promotion.
-- A name without a row has auto_rollback on, 50 %, 20 calls, 60 s.
CREATE TABLE plugin_failure_policies (
    name           TEXT PRIMARY KEY,
    auto_rollback  INTEGER NOT NULL CHECK (auto_rollback IN (0, 1)),
    max_fault_pct  INTEGER NOT NULL CHECK (max_fault_pct BETWEEN 1 AND 100),
    min_calls      INTEGER NOT NULL CHECK (min_calls BETWEEN 1 AND 100000),
    window_secs    INTEGER NOT NULL CHECK (window_secs BETWEEN 5 AND 3600)
);
