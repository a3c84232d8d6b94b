-- The click-to-WhatsApp ad or post that started a chat, kept on the inbound message that carried
-- it: JSON (source_url, source_type, source_id, headline, body, click_id; absent fields
-- omitted), each field capped by the host. Erased with its message.
ALTER TABLE messages ADD COLUMN referral TEXT;
