-- The plugin catalog (issue 14): uploaded components live in the database beside the bundled
-- and directory ones, versions side by side; a name's promoted version and the pins of
-- endpoints and tenants' policies choose which version a call runs; every change bumps a
-- generation counter that each host polls to load what changed, without a restart.

-- `plugins` gains uploads: the component's bytes, who published it and who uploaded it.
ALTER TABLE plugins DROP CONSTRAINT plugins_source_check;
ALTER TABLE plugins ADD CONSTRAINT plugins_source_check
    CHECK (source IN ('bundled', 'directory', 'upload'));
ALTER TABLE plugins ADD COLUMN publisher TEXT NOT NULL DEFAULT 'operator';
ALTER TABLE plugins ADD COLUMN uploaded_by TEXT;
ALTER TABLE plugins ADD COLUMN uploaded_at BIGINT;
ALTER TABLE plugins ADD COLUMN component BYTEA;
ALTER TABLE plugins ADD COLUMN signature TEXT NOT NULL DEFAULT 'unsigned';
-- An uploaded version is one component: the same name and version cannot change bytes.
CREATE UNIQUE INDEX plugins_upload ON plugins (name, version) WHERE source = 'upload';

-- The version a name's calls run when nothing pins one, and why (promote, roll back).
CREATE TABLE plugin_promotions (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    previous    TEXT,
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL
);

-- Pins: an endpoint's connector, or a tenant's policy, held at one version.
CREATE TABLE plugin_pins (
    kind        TEXT NOT NULL CHECK (kind IN ('endpoint', 'tenant')),
    target      TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    version     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (kind, target, plugin)
);
CREATE INDEX plugin_pins_version ON plugin_pins (plugin, version);

-- Bumped by every catalog change; hosts poll it.
CREATE TABLE plugin_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
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
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
