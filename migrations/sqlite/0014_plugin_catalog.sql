-- The plugin catalog (issue 14): uploaded components live in the database beside the bundled
-- and directory ones, versions side by side; a name's promoted version and the pins of
-- endpoints and tenants' policies choose which version a call runs; every change bumps a
-- generation counter that each host polls to load what changed, without a restart.

-- `plugins` gains uploads: the component's bytes, who published it and who uploaded it.
CREATE TABLE plugins_v2 (
    sha256         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    world          TEXT NOT NULL CHECK (world IN ('connector', 'reply-policy')),
    interface      TEXT NOT NULL,
    manifest       TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('bundled', 'directory', 'upload')),
    publisher      TEXT NOT NULL DEFAULT 'operator',
    uploaded_by    TEXT,
    uploaded_at    INTEGER,
    component      BLOB,
    signature      TEXT NOT NULL DEFAULT 'unsigned',
    first_seen_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_loaded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO plugins_v2 (sha256, name, version, world, interface, manifest, size_bytes, source,
                        first_seen_at, last_loaded_at)
SELECT sha256, name, version, world, interface, manifest, size_bytes, source,
       first_seen_at, last_loaded_at FROM plugins;
DROP TABLE plugins;
ALTER TABLE plugins_v2 RENAME TO plugins;
CREATE INDEX plugins_name ON plugins (name, version);
-- An uploaded version is one component: the same name and version cannot change bytes.
CREATE UNIQUE INDEX plugins_upload ON plugins (name, version) WHERE source = 'upload';

-- The version a name's calls run when nothing pins one, and why (promote, roll back).
CREATE TABLE plugin_promotions (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    previous    TEXT,
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL
);

-- Pins: an endpoint's connector, or a tenant's policy, held at one version.
CREATE TABLE plugin_pins (
    kind        TEXT NOT NULL CHECK (kind IN ('endpoint', 'tenant')),
    target      TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    version     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (kind, target, plugin)
);
CREATE INDEX plugin_pins_version ON plugin_pins (plugin, version);

-- Bumped by every catalog change; hosts poll it.
CREATE TABLE plugin_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO plugin_generation (id, generation) VALUES (1, 0);

-- A partner publishes plugins named `<namespace>-…` only; the operator assigns the namespace.
ALTER TABLE partners ADD COLUMN namespace TEXT;
CREATE UNIQUE INDEX partners_namespace ON partners (namespace) WHERE namespace IS NOT NULL;

-- Ed25519 keys the operator trusts to sign plugins, each for one publisher (`operator` or
-- `partner:<id>`): a key signs only names its publisher may publish. `plugins.signature` is
-- `unsigned` or `key:<id>` of the key whose signature verified at upload.
CREATE TABLE publisher_keys (
    id          TEXT PRIMARY KEY,
    publisher   TEXT NOT NULL,
    public_key  TEXT NOT NULL UNIQUE,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
