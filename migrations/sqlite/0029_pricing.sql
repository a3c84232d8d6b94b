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
    messages   INTEGER NOT NULL DEFAULT 0,
    billable   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, category)
);
