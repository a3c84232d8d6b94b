-- Insights (issue 17): what a policy's `insights` export made of a conversation, kept until
-- someone asks again. One row per conversation; erased with it.
CREATE TABLE insights (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    conversation_id  TEXT NOT NULL,
    sentiment        TEXT NOT NULL,        -- negative, neutral, positive, mixed
    score            DOUBLE PRECISION NOT NULL,  -- -1.0 .. 1.0
    summary          TEXT NOT NULL,
    language         TEXT,
    plugin           TEXT NOT NULL,        -- the policy that computed it, name@version
    through_message  TEXT NOT NULL,        -- the newest message it read (`msg_…`)
    messages         INTEGER NOT NULL,     -- how many messages it read
    computed_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
);

-- Row-level security: the tenant scope only (the shape of 0002).
ALTER TABLE insights ENABLE ROW LEVEL SECURITY;
ALTER TABLE insights FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_own ON insights USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
