-- Provider redeliveries (issue 13, item 13): the SHA-256 of each processed receipt's body per
-- endpoint, so an identical body delivered again within the provider's retry window (Meta: up
-- to 7 days) is acknowledged and stored but not applied a second time. Host scope; no content.
CREATE TABLE receipt_digests (
    endpoint_id  TEXT NOT NULL,
    digest       BLOB NOT NULL,
    receipt_id   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, digest)
);
CREATE INDEX receipt_digests_received ON receipt_digests (received_at);
