-- The program runner: settings shared by every node, engagement with sends, when a
-- step first became due, and when an enrollment met its goal.
-- Append-only: never edit a released migration. Times are ms since epoch.

-- Values every node of one database shares: the link-signing secret (so signed links
-- survive restarts and verify on any node) and the runner's cursors.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- How a recipient engaged with a send, once per kind: delivered, opened, clicked,
-- answered, bounced, complained, unsubscribed. What `opened('step')` and friends read.
CREATE TABLE engagements (
    enrollment_id  INTEGER NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    at             INTEGER NOT NULL,
    detail         TEXT NOT NULL,      -- JSON: the score of an answer, the URL of a click, …
    PRIMARY KEY (enrollment_id, step_id, kind)
);

-- When the step first became due: a deferral (quiet hours, a frequency cap, a wait that
-- polls its condition) moves due_at, never this, so a wait's timeout counts from here.
ALTER TABLE due_steps ADD COLUMN started_at INTEGER;

-- When the program's goal was first met within its window (null: not met).
ALTER TABLE enrollments ADD COLUMN goal_met_at INTEGER;
