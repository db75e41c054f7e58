-- A messageId is unique per source (the write key's name, or `import`), not across all
-- sources: two products that happen to send the same id both keep their event. Each
-- source still stores a resent message once. (message_id, source) in that order also
-- serves lookups by message_id alone. Rows and `seq` are untouched.
-- Append-only: never edit a released migration.

ALTER TABLE events ADD CONSTRAINT events_message_id_source_key UNIQUE (message_id, source);
ALTER TABLE events DROP CONSTRAINT events_message_id_key;
