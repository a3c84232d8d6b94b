-- Insights (issue 17): what a policy's `insights` export made of a conversation, kept until
-- someone asks again. One row per conversation; erased with it.
CREATE TABLE insights (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    conversation_id  TEXT NOT NULL,
    sentiment        TEXT NOT NULL,        -- negative, neutral, positive, mixed
    score            REAL NOT NULL,        -- -1.0 .. 1.0
    summary          TEXT NOT NULL,
    language         TEXT,
    plugin           TEXT NOT NULL,        -- the policy that computed it, name@version
    through_message  TEXT NOT NULL,        -- the newest message it read (`msg_…`)
    messages         INTEGER NOT NULL,     -- how many messages it read
    computed_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
);
