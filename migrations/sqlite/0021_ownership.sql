-- Who owns a conversation (DECISIONS C4): its policy or people, with an optional assignee, and
-- since when (the idle hand-back). It replaces the AI on/off flag.
ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT 'policy' CHECK (owner IN ('policy', 'people'));
ALTER TABLE conversations ADD COLUMN assignee TEXT;
ALTER TABLE conversations ADD COLUMN owned_since INTEGER;
UPDATE conversations SET owner = 'people' WHERE ai_enabled = 0;
ALTER TABLE conversations DROP COLUMN ai_enabled;
CREATE INDEX conversations_assignee ON conversations (tenant_id, assignee) WHERE assignee IS NOT NULL;
