-- A contact who stopped marketing messages (Meta 131050) gets no marketing template again,
-- whatever the tenant's consent record says.
ALTER TABLE contacts ADD COLUMN marketing_stopped_at BIGINT;
