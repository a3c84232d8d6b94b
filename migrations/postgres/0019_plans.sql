-- Plans (DECISIONS C5): the operator defines plans, and partners define their own within the
-- ceiling plan the operator gives them. A tenant has one plan or none (none: unlimited).
CREATE TABLE plans (
    id                TEXT PRIMARY KEY,
    partner_id        TEXT REFERENCES partners (id),   -- NULL: the operator's
    name              TEXT NOT NULL,
    channels          TEXT,                            -- JSON array of connector names; NULL: every one
    max_numbers       BIGINT,                          -- NULL: unlimited
    monthly_messages  BIGINT,                          -- outbound per calendar month (UTC); NULL: unlimited
    ai_policies       BIGINT NOT NULL DEFAULT 1 CHECK (ai_policies IN (0, 1)),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX plans_name ON plans (COALESCE(partner_id, ''), name);
ALTER TABLE partners ADD COLUMN plan_ceiling TEXT REFERENCES plans (id);
ALTER TABLE tenants ADD COLUMN plan_id TEXT REFERENCES plans (id);
-- Replies the providers accepted, per day: what a plan's monthly allowance counts.
ALTER TABLE tenant_counters ADD COLUMN messages_sent BIGINT NOT NULL DEFAULT 0;
