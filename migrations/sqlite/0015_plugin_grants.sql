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
