-- Engine state (SQLite). Append-only: never edit a released migration.

-- What the engine derived from the log (segment_entered, milestone_missed, …): events of
-- their own, read in seq order by programs and per subject by the account timeline.
-- `key` is the engine's deterministic dedup key: a transition recomputed after a restart,
-- or by a second node, is stored once.
CREATE TABLE transitions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT NOT NULL UNIQUE,
    at            INTEGER NOT NULL,    -- ms since epoch
    subject_kind  TEXT NOT NULL,       -- account | contact
    subject_id    INTEGER NOT NULL,
    kind          TEXT NOT NULL,       -- segment_entered, milestone_missed, …
    detail        TEXT NOT NULL,       -- JSON
    backfill      INTEGER NOT NULL     -- 1 when derived while replaying the log after a definition change
);
CREATE INDEX transitions_subject ON transitions(subject_kind, subject_id);

-- CSMs' health overrides. Append-only: the rows are the audit trail; the latest row of
-- an account is the one that counts (score NULL: the override was cleared).
CREATE TABLE health_overrides (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    score       REAL,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL,      -- ms since epoch
    expires_at  INTEGER                -- ms since epoch
);
CREATE INDEX health_overrides_account ON health_overrides(account_id, set_at);

-- Every load of a workspace definition: the audit of definition changes, and how the
-- engine knows that the definitions changed since it last ran (a backfill is due).
CREATE TABLE definitions (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,          -- content hash of the definitions
    summary    TEXT NOT NULL,          -- one line, for people
    loaded_at  INTEGER NOT NULL        -- ms since epoch
);
