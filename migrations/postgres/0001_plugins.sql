-- Plugins the host has loaded, content-addressed by the sha256 of the packed component.
CREATE TABLE plugins (
    sha256         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    world          TEXT NOT NULL CHECK (world IN ('connector', 'reply-policy')),
    interface      TEXT NOT NULL,
    manifest       TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('bundled', 'directory')),
    first_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_loaded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX plugins_name ON plugins (name, version);
