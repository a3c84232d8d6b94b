-- Sending (A8): a reply keeps what the host decided to send; each attempt is recorded before the
-- provider is called, so an attempt whose outcome never came back (a crash, a lost lease) makes
-- the next one a possible duplicate.
ALTER TABLE messages ADD COLUMN content TEXT;                               -- JSON reply (content, fallback)
ALTER TABLE messages ADD COLUMN send_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sending_until BIGINT;                      -- set while an attempt is in flight (ms)
ALTER TABLE messages ADD COLUMN possible_duplicate INTEGER NOT NULL DEFAULT 0 CHECK (possible_duplicate IN (0, 1));

-- The per-connection send rate: the next free send slot (µs), shared by every host process.
ALTER TABLE connections ADD COLUMN next_send_at BIGINT NOT NULL DEFAULT 0;

-- A policy's hand-off to a human: AI replies stop, and the reason is kept.
ALTER TABLE conversations ADD COLUMN handoff_reason TEXT;

-- Claiming a job walks one of two indexes: due queued jobs by run_at, expired leases by
-- lease_until (an OR of both scanned the whole table, done jobs included).
CREATE INDEX jobs_leases ON jobs (state, lease_until);
