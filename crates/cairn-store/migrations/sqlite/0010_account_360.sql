-- The account 360 (issue 17) reads one account's events, aliases and transitions, newest
-- first, a page at a time. Every read is by the account's own ids, so these indexes keep
-- it as cheap at 50 million events as at fifty.
-- Append-only: never edit a released migration.

-- An account's events by its product id (the groupId its events carry), newest first;
-- with the userId and kind, its contacts' activity is counted from the index alone.
CREATE INDEX events_group_ts ON events(group_id, ts, user_id, kind) WHERE group_id IS NOT NULL;

-- Events that name no group belong to their contact's account: found by the contact's
-- userId. Events with a groupId are not in it, so a product that sends groupId on every
-- event pays nothing for it on append.
CREATE INDEX events_ungrouped_user_ts ON events(user_id, ts, kind) WHERE group_id IS NULL AND user_id IS NOT NULL;

-- A contact's aliases (its anonymous ids, previous ids and cairn's own alias).
CREATE INDEX contact_aliases_contact ON contact_aliases(contact_id);

-- A subject's transitions newest first (the old index is this one's prefix).
DROP INDEX transitions_subject;
CREATE INDEX transitions_subject_at ON transitions(subject_kind, subject_id, at);
