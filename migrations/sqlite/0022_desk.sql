-- The desk (issue 17): who sent each outbound message, when people last worked a conversation
-- (the idle hand-back counts from it), how long a tenant lets people's conversations sit idle
-- before its policy takes them back, and short-lived links through which providers fetch the
-- media people send.
ALTER TABLE messages ADD COLUMN author TEXT;             -- policy, usr_…, key_…, echo, test
ALTER TABLE conversations ADD COLUMN people_active_at INTEGER;
ALTER TABLE tenants ADD COLUMN hand_back_minutes INTEGER;
ALTER TABLE media ADD COLUMN filename TEXT;          -- a document's name, as people sent it
ALTER TABLE media ADD COLUMN link_hash TEXT;             -- SHA-256 of the fetch link's secret
ALTER TABLE media ADD COLUMN link_expires_at INTEGER;
CREATE INDEX conversations_people ON conversations (tenant_id, owner, people_active_at) WHERE owner = 'people';
