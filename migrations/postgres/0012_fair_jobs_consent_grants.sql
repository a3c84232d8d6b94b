-- Fair job claims and the consent state a decision reads.
--
-- Jobs: `fairness_key` (the tenant; the endpoint for `process-receipt`, which has no tenant yet)
-- and `vt`, a virtual start time: a job is queued behind its own key's queued jobs but never
-- behind the head of the whole queue, so one key's backlog cannot delay another key's next job
-- (start-time fair queueing). Workers claim the due job with the smallest `vt`. A job put back
-- for later (retry back-off, deferral) has `vt` NULL until it is due, when it takes a new one.
ALTER TABLE jobs ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN vt BIGINT;
UPDATE jobs SET vt = 0 WHERE state = 'queued' AND run_at <= (extract(epoch FROM now()) * 1000)::bigint;
DROP INDEX jobs_ready;
-- Claims (queued, vt >= 0, by vt) and promotions of due delayed jobs (queued, vt NULL, run_at).
CREATE INDEX jobs_fair ON jobs (state, vt, run_at);
-- The tail of one key's queue.
CREATE INDEX jobs_lane ON jobs (fairness_key, state, vt);

-- The scopes in force, kept by every ledger append in the same transaction (the ledger stays
-- the record; this is its current sum): `connection_id` '' is a tenant-wide grant. A decision
-- reads one row here instead of the tenant's whole ledger.
CREATE TABLE consent_grants (
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    scope          TEXT NOT NULL,
    granted_seq    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, connection_id)
);
INSERT INTO consent_grants (tenant_id, connection_id, scope, granted_seq)
SELECT l.tenant_id, COALESCE(l.connection_id, ''), s.value, MAX(l.seq)
  FROM consent_ledger l, jsonb_array_elements_text(l.scopes::jsonb) s(value)
 WHERE l.action = 'granted'
 GROUP BY l.tenant_id, COALESCE(l.connection_id, ''), s.value;
-- A later revocation ends a grant: one of its connection (or of every connection when it is
-- tenant-wide), of its scopes (or of every scope when it names none).
DELETE FROM consent_grants g WHERE EXISTS (
    SELECT 1 FROM consent_ledger r
     WHERE r.tenant_id = g.tenant_id AND r.seq > g.granted_seq
       AND r.action IN ('revoked', 'token-revoked', 'revoked-at-provider')
       AND (r.connection_id IS NULL OR r.connection_id = g.connection_id)
       AND (r.scopes::jsonb = '[]'::jsonb
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.scopes::jsonb) s(value)
                        WHERE s.value = g.scope)));

ALTER TABLE consent_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE consent_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_own ON consent_grants
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
