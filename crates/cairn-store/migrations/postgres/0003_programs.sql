-- Programs (PostgreSQL): enrollments, due steps with leases, the send ledger, the outbox,
-- dead letters, consent, suppressions, the in-app inbox and tasks.
-- Append-only: never edit a released migration. Times are ms since epoch.

-- One subject's pass through a program. (program, subject, trigger_key) is unique, so a
-- trigger seen twice (a restart, a second node) enrolls once.
CREATE TABLE enrollments (
    id            BIGSERIAL PRIMARY KEY,
    program_id    TEXT NOT NULL,
    subject_kind  TEXT NOT NULL,       -- account | contact
    subject_id    BIGINT NOT NULL,
    trigger_key   TEXT NOT NULL,       -- what enrolled it (a transition key, a schedule tick, …)
    enrolled_at   BIGINT NOT NULL,
    holdout       BOOLEAN NOT NULL,    -- true: enrolled but receives nothing (the control group)
    variant       TEXT,                -- A/B split arm
    status        TEXT NOT NULL,       -- active | completed | goal_met | exited
    ended_at      BIGINT,
    UNIQUE (program_id, subject_kind, subject_id, trigger_key)
);
CREATE INDEX enrollments_subject ON enrollments(program_id, subject_kind, subject_id, enrolled_at);
CREATE INDEX enrollments_status ON enrollments(program_id, status);

-- Steps waiting to run. A worker claims a pending, due row by setting a lease
-- (lease_owner, lease_until); an expired lease may be claimed by another worker. A retry
-- closes the row (status retried) and adds the next attempt, so every attempt's error
-- is kept; (enrollment, step, attempt) is unique, so scheduling is idempotent.
CREATE TABLE due_steps (
    id             BIGSERIAL PRIMARY KEY,
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    attempt        BIGINT NOT NULL,
    due_at         BIGINT NOT NULL,
    status         TEXT NOT NULL,      -- pending | done | retried | dead | cancelled
    lease_owner    TEXT,
    lease_until    BIGINT,
    last_error     TEXT,
    finished_at    BIGINT,
    UNIQUE (enrollment_id, step_id, attempt)
);
CREATE INDEX due_steps_due ON due_steps(status, due_at);

-- What each step did, once: the unique key (enrollment, step) makes a second send of a
-- step impossible to record. contact_id is the recipient, for frequency caps.
CREATE TABLE send_ledger (
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    channel        TEXT NOT NULL,
    outcome        TEXT NOT NULL,      -- sent | held_out | skipped_consent | skipped_cap | …
    message_id     TEXT,
    contact_id     BIGINT,
    detail         TEXT NOT NULL,      -- JSON
    at             BIGINT NOT NULL,
    PRIMARY KEY (enrollment_id, step_id)
);
CREATE INDEX send_ledger_caps ON send_ledger(contact_id, channel, at) WHERE outcome = 'sent';

-- The local outbox: email that did not leave the machine. Written in the same
-- transaction as its ledger entry, so it holds each send exactly once.
CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    message_id     TEXT NOT NULL UNIQUE,
    enrollment_id  BIGINT REFERENCES enrollments(id),
    step_id        TEXT,
    to_address     TEXT NOT NULL,
    subject        TEXT NOT NULL,
    html           TEXT NOT NULL,
    text           TEXT NOT NULL,
    headers        TEXT NOT NULL,      -- JSON
    created_at     BIGINT NOT NULL
);

-- Steps that failed for good, with the reason.
CREATE TABLE dead_letters (
    id             BIGSERIAL PRIMARY KEY,
    due_step_id    BIGINT NOT NULL UNIQUE REFERENCES due_steps(id),
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    attempt        BIGINT NOT NULL,
    reason         TEXT NOT NULL,
    at             BIGINT NOT NULL
);

-- Consent per contact and topic. Append-only: every change is kept; the latest (by at,
-- then id) is the one in force.
CREATE TABLE consent_changes (
    id          BIGSERIAL PRIMARY KEY,
    contact_id  BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    subscribed  BOOLEAN NOT NULL,
    source      TEXT NOT NULL,         -- who said so: unsubscribe_link, import, api, …
    at          BIGINT NOT NULL
);
CREATE INDEX consent_changes_topic ON consent_changes(contact_id, topic, at);

-- Addresses nothing is sent to (lowercase): hard bounces, complaints, unsubscribe-all.
CREATE TABLE suppressions (
    address  TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    at       BIGINT NOT NULL
);

-- The in-app inbox the customer's product reads. One message per (enrollment, step,
-- contact), so writing it again after a crash adds nothing.
CREATE TABLE inapp_messages (
    id             BIGSERIAL PRIMARY KEY,
    contact_id     BIGINT NOT NULL,
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    title          TEXT NOT NULL,
    body_html      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    seen_at        BIGINT,
    clicked_at     BIGINT,
    dismissed_at   BIGINT,
    UNIQUE (enrollment_id, step_id, contact_id)
);
CREATE INDEX inapp_messages_contact ON inapp_messages(contact_id, created_at);

-- Human touches. One task per (enrollment, step).
CREATE TABLE tasks (
    id             BIGSERIAL PRIMARY KEY,
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments(id),
    step_id        TEXT NOT NULL,
    account_id     BIGINT,
    contact_id     BIGINT,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    assignee       TEXT,               -- who does it (an email)
    pool           TEXT,               -- the team it was given to, if pooled
    priority       BIGINT NOT NULL,    -- 0 low, 1 normal, 2 high, 3 urgent
    due_at         BIGINT,
    created_at     BIGINT NOT NULL,
    status         TEXT NOT NULL,      -- open | done
    completed_by   TEXT,
    completed_at   BIGINT,
    UNIQUE (enrollment_id, step_id)
);
CREATE INDEX tasks_assignee ON tasks(status, assignee);
CREATE INDEX tasks_pool ON tasks(pool, created_at);
