-- cairn foundation schema (SQLite). Append-only: never edit a released migration.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT,
    industry      TEXT,
    employees     INTEGER,
    plan          TEXT,
    seats         INTEGER,
    owner_email   TEXT,
    start_date    TEXT,            -- ISO YYYY-MM-DD
    renewal_date  TEXT,            -- ISO YYYY-MM-DD, when the CRM gives one
    traits        TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE account_domains (
    domain      TEXT NOT NULL,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (domain, account_id)
);

CREATE TABLE contacts (
    id                  INTEGER PRIMARY KEY,
    account_id          INTEGER REFERENCES accounts(id),
    account_match_basis TEXT,      -- how the account link was made (import, group_call, email_domain:acme.com)
    email               TEXT,
    name                TEXT,
    role                TEXT,
    timezone            TEXT,
    traits              TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX contacts_account ON contacts(account_id);
CREATE INDEX contacts_email ON contacts(email);

-- External ids per source system; (kind, source, external_id) names one entity.
CREATE TABLE external_ids (
    entity_kind  TEXT NOT NULL,    -- account | contact
    source       TEXT NOT NULL,    -- crm | billing | product | support
    external_id  TEXT NOT NULL,
    entity_id    INTEGER NOT NULL,
    basis        TEXT NOT NULL,    -- why this id points here: import, identify, group, email_match
    PRIMARY KEY (entity_kind, source, external_id)
);
CREATE INDEX external_ids_entity ON external_ids(entity_kind, entity_id);

-- Anonymous ids and alias previous ids that resolve to a contact.
CREATE TABLE contact_aliases (
    alias       TEXT PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    basis       TEXT NOT NULL      -- identify | alias
);

CREATE TABLE subscriptions (
    source       TEXT NOT NULL,
    id           TEXT NOT NULL,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    start_date   TEXT NOT NULL,    -- first active day, inclusive
    end_date     TEXT NOT NULL,    -- last active day, inclusive
    arr_cents    INTEGER NOT NULL,
    seats        INTEGER,
    product      TEXT,
    traits       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (source, id)
);
CREATE INDEX subscriptions_account ON subscriptions(account_id);

-- The append-only event log. seq is monotonically increasing (AUTOINCREMENT never reuses).
-- No secondary indexes: every read of the log is a scan in seq order (engine, doctor),
-- and each index would cost every append.
-- Identity is resolved at read time from user_id / anonymous_id / group_id, so an event
-- that matched nobody when it arrived is linked as soon as the identity becomes known.
CREATE TABLE events (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT NOT NULL UNIQUE,
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
    context             TEXT
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,     -- write | publishable | secret
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,   -- SHA-256 of the key; the key itself is never stored
    key_prefix  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE import_runs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    file         TEXT NOT NULL,
    source       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    rows_total   INTEGER NOT NULL,
    rows_ok      INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    rejects      TEXT NOT NULL     -- JSON array of the first rejected rows with reasons
);

-- Identity resolution, defined once: an event's contact comes from its userId (the
-- contact's product id, or an alias) or its anonymousId (an alias); its account from
-- its groupId (the account's product id) or else from its contact's account.
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
