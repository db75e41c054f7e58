-- Engine state (PostgreSQL). Append-only: never edit a released migration.

-- What the engine derived from the log (segment_entered, milestone_missed, …): events of
-- their own, read in seq order by programs and per subject by the account timeline.
-- `key` is the engine's deterministic dedup key: a transition recomputed after a restart,
-- or by a second node, is stored once.
CREATE TABLE transitions (
    seq           BIGSERIAL PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    at            BIGINT NOT NULL,
    subject_kind  TEXT NOT NULL,
    subject_id    BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    detail        TEXT NOT NULL,
    backfill      BOOLEAN NOT NULL
);
CREATE INDEX transitions_subject ON transitions(subject_kind, subject_id);

-- CSMs' health overrides. Append-only: the rows are the audit trail; the latest row of
-- an account is the one that counts (score NULL: the override was cleared).
CREATE TABLE health_overrides (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    score       DOUBLE PRECISION,
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX health_overrides_account ON health_overrides(account_id, set_at);

-- Every load of a workspace definition: the audit of definition changes, and how the
-- engine knows that the definitions changed since it last ran (a backfill is due).
CREATE TABLE definitions (
    id         BIGSERIAL PRIMARY KEY,
    hash       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    loaded_at  BIGINT NOT NULL
);
