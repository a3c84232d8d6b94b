-- API keys expire (a key past `expires_at` is refused with 401 `key_expired`; a partner key's
-- rotation sets it on the old key for the overlap), and partners' keys are listed by partner.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
CREATE INDEX api_keys_partner ON api_keys (partner_id);

-- The Meta redirect flow is bound to the browser that started it: the API hands out a one-time
-- ticket (`ticket_hash`); the browser that opens it gets a cookie whose nonce's hash is
-- `browser_hash`, and only that browser's callback and confirmation count. `confirm_hash` is the
-- one-time token of the confirmation page that names the tenant before anything is registered.
ALTER TABLE meta_onboarding_sessions ADD COLUMN ticket_hash BYTEA;
ALTER TABLE meta_onboarding_sessions ADD COLUMN browser_hash BYTEA;
ALTER TABLE meta_onboarding_sessions ADD COLUMN confirm_hash BYTEA;
