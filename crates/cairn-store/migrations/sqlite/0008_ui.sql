-- The web UI's own state (issue 17): CSMs' notes on accounts, programs paused by an
-- operator (the runner neither enrolls into nor runs the steps of a paused program; its
-- due steps wait and run after a resume), and the outcome a CSM gives when completing a
-- task. Instants are ms since epoch, as elsewhere.
-- Append-only: never edit a released migration.

CREATE TABLE account_notes (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX account_notes_account ON account_notes(account_id, created_at);

-- One row per paused program; a resume deletes it.
CREATE TABLE program_pauses (
    program_id  TEXT PRIMARY KEY,
    paused_by   TEXT NOT NULL,
    paused_at   INTEGER NOT NULL
);

ALTER TABLE tasks ADD COLUMN outcome TEXT;
-- The account 360 lists an account's tasks.
CREATE INDEX tasks_account ON tasks(account_id, created_at);
