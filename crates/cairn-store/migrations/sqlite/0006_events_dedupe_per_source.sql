-- A messageId is unique per source (the write key's name, or `import`), not across all
-- sources: two products that happen to send the same id both keep their event. Each
-- source still stores a resent message once.
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt the way its
-- documentation prescribes: the view that reads `events` is dropped first (a rename
-- checks every view against the schema), the rows are copied with their `seq`
-- unchanged, the AUTOINCREMENT counter is carried over (readers keep `seq` as a cursor,
-- so it must never go back, even past rows that were skipped), the old table is dropped
-- and the new one takes its name; then the view is recreated exactly as 0001 defined it.
-- (message_id, source) in that order also serves lookups by message_id alone.
-- Append-only: never edit a released migration.

DROP VIEW event_identity;

CREATE TABLE events_by_source (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT NOT NULL,
    kind                TEXT NOT NULL,
    event               TEXT,
    user_id             TEXT,
    anonymous_id        TEXT,
    group_id            TEXT,
    previous_id         TEXT,
    ts                  INTEGER NOT NULL,   -- ms since epoch, skew-corrected
    original_ts         INTEGER,
    sent_at             INTEGER,
    received_at         INTEGER NOT NULL,
    source              TEXT NOT NULL,
    properties          TEXT,
    context             TEXT,
    UNIQUE (message_id, source)
);

INSERT INTO events_by_source (seq, message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts,
                              original_ts, sent_at, received_at, source, properties, context)
SELECT seq, message_id, kind, event, user_id, anonymous_id, group_id, previous_id, ts,
       original_ts, sent_at, received_at, source, properties, context
FROM events ORDER BY seq;

-- The copy set the new counter to the largest seq copied; the old counter may be higher.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_by_source', seq FROM sqlite_sequence
WHERE name = 'events' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_by_source');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT s.seq FROM sqlite_sequence s WHERE s.name = 'events'), 0))
WHERE name = 'events_by_source';

DROP TABLE events;
ALTER TABLE events_by_source RENAME TO events;

CREATE VIEW event_identity AS
SELECT r.seq,
       r.contact_id,
       COALESCE(r.group_account_id, c.account_id) AS account_id
FROM (
    SELECT e.seq,
           COALESCE(
               (SELECT x.entity_id FROM external_ids x
                 WHERE x.entity_kind = 'contact' AND x.source = 'product' AND x.external_id = e.user_id),
               (SELECT a.contact_id FROM contact_aliases a WHERE a.alias = e.user_id),
               (SELECT a.contact_id FROM contact_aliases a WHERE a.alias = e.anonymous_id)
           ) AS contact_id,
           (SELECT x.entity_id FROM external_ids x
             WHERE x.entity_kind = 'account' AND x.source = 'product' AND x.external_id = e.group_id
           ) AS group_account_id
    FROM events e
) r
LEFT JOIN contacts c ON c.id = r.contact_id;
