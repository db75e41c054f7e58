-- Pending due steps get their own partial index. The old (status, due_at) index was
-- chosen by the planner for "an enrollment's pending steps" too, which then scanned
-- every pending step of every enrollment (a million in a large launch) per call; with
-- the partial index the planner goes by enrollment, and a claim reads only pending rows.
-- Append-only: never edit a released migration.

DROP INDEX due_steps_due;
CREATE INDEX due_steps_pending ON due_steps(due_at, id) WHERE status = 'pending';
