-- Replies: an outbound message carries the idempotency key of the decision that made it (one
-- reply per decision, whatever the retries) and the provider id of the message it answers.
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
ALTER TABLE messages ADD COLUMN reply_to TEXT;
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
