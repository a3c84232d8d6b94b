-- The desk in real time (issue 17): what happened in a tenant, in the order it committed, for
-- Server-Sent Events (a stream resumes after its Last-Event-ID); and each person's
-- notifications with their read state.
CREATE TABLE events (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    seq              BIGINT NOT NULL,      -- per tenant, in commit order
    user_id          TEXT,                 -- only this person sees it; NULL: every member
    kind             TEXT NOT NULL,        -- message, status, conversation, notification
    conversation_id  TEXT,
    data             TEXT NOT NULL,        -- JSON: ids and states, never message text
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- Each tenant's last event number: only ever goes up (events may be erased), and its row is
-- the emitters' turn (held to commit, so numbers follow commit order).
CREATE TABLE event_counters (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (tenant_id),
    seq        BIGINT NOT NULL
);

CREATE TABLE notifications (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,        -- hand-off, message, failure, connection
    conversation_id  TEXT,
    connection_id    TEXT,
    text             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    read_at          BIGINT
);
CREATE INDEX notifications_user ON notifications (tenant_id, user_id, id);
CREATE INDEX notifications_unread ON notifications (tenant_id, user_id) WHERE read_at IS NULL;

-- Row-level security: the tenant scope only (the shape of 0002).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'event_counters', 'notifications']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_own ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                       'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
