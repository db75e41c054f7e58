-- Daily health snapshots (issue 15): each account's end-of-day health, kept as runs. A
-- row holds from the end of its day (a calendar day in the workspace time zone,
-- YYYY-MM-DD) until the day before the account's next row; the runtime writes one for
-- each day the health changed, during the backfill replay as during the live tail.
-- (account_id, day) is the key: a restart or a second node recomputing the same day
-- writes nothing new. pillars and measures are JSON arrays in model order:
-- [[pillar, score|null], …] and [[pillar, measure, score|null], …] (0–100 scores).
-- The setting `health_snapshots_through` is the last day whose end the writer passed:
-- rows say nothing about later days. The rows are the current definitions' view of the
-- past: a change of definitions clears them and the replay writes them again.
-- Append-only: never edit a released migration.

CREATE TABLE health_snapshots (
    account_id  BIGINT NOT NULL,
    day         TEXT NOT NULL,
    model       TEXT NOT NULL,
    score       DOUBLE PRECISION,
    band        TEXT,
    pillars     TEXT NOT NULL,
    measures    TEXT NOT NULL,
    PRIMARY KEY (account_id, day)
);
CREATE INDEX health_snapshots_day ON health_snapshots(day);
