-- What the provider charges for an outbound message, from its status (Meta's `pricing`): JSON
-- (category, billable, model, pricing_type; absent fields omitted), checked by the host and
-- recorded once, from the first status that carries it. Erased with its message.
ALTER TABLE messages ADD COLUMN pricing TEXT;

-- Outbound messages per day and pricing category, counted when a message's pricing is first
-- recorded; `billable` counts those the provider charges. Aggregates only: kept when messages
-- are erased, like tenant_counters.
CREATE TABLE pricing_counters (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    day        TEXT NOT NULL,
    category   TEXT NOT NULL,
    messages   BIGINT NOT NULL DEFAULT 0,
    billable   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, category)
);

-- Row-level security as tenant_counters: the tenant; read-only for its partner and the
-- operator (the report).
ALTER TABLE pricing_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE pricing_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_own ON pricing_counters
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY partner_read ON pricing_counters FOR SELECT
    USING (tenant_id IN (SELECT t.tenant_id FROM tenants t
                         WHERE t.partner_id = current_setting('app.partner_id', true)));
CREATE POLICY operator_read ON pricing_counters FOR SELECT
    USING (current_setting('app.operator', true) = 'on');
