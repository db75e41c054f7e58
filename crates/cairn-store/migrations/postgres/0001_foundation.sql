-- cairn foundation schema (PostgreSQL). Append-only: never edit a released migration.
CREATE TABLE accounts (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT,
    industry      TEXT,
    employees     BIGINT,
    plan          TEXT,
    seats         BIGINT,
    owner_email   TEXT,
    start_date    TEXT,
    renewal_date  TEXT,
    traits        TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE account_domains (
    domain      TEXT NOT NULL,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (domain, account_id)
);

CREATE TABLE contacts (
    id                  BIGSERIAL PRIMARY KEY,
    account_id          BIGINT REFERENCES accounts(id),
    account_match_basis TEXT,
    email               TEXT,
    name                TEXT,
    role                TEXT,
    timezone            TEXT,
    traits              TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX contacts_account ON contacts(account_id);
CREATE INDEX contacts_email ON contacts(email);

CREATE TABLE external_ids (
    entity_kind  TEXT NOT NULL,
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    entity_id    BIGINT NOT NULL,
    basis        TEXT NOT NULL,
    PRIMARY KEY (entity_kind, source, external_id)
);
CREATE INDEX external_ids_entity ON external_ids(entity_kind, entity_id);

CREATE TABLE contact_aliases (
    alias       TEXT PRIMARY KEY,
    contact_id  BIGINT NOT NULL REFERENCES contacts(id),
    basis       TEXT NOT NULL
);

CREATE TABLE subscriptions (
    source       TEXT NOT NULL,
    id           TEXT NOT NULL,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    start_date   TEXT NOT NULL,
    end_date     TEXT NOT NULL,
    arr_cents    BIGINT NOT NULL,
    seats        BIGINT,
    product      TEXT,
    traits       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (source, id)
);
CREATE INDEX subscriptions_account ON subscriptions(account_id);

CREATE TABLE events (
    seq                 BIGSERIAL PRIMARY KEY,
    message_id          TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL,
    event               TEXT,
    user_id             TEXT,
    anonymous_id        TEXT,
    group_id            TEXT,
    previous_id         TEXT,
    ts                  BIGINT NOT NULL,
    original_ts         BIGINT,
    sent_at             BIGINT,
    received_at         BIGINT NOT NULL,
    source              TEXT NOT NULL,
    properties          TEXT,
    context             TEXT
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE import_runs (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT NOT NULL,
    file         TEXT NOT NULL,
    source       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    rows_total   BIGINT NOT NULL,
    rows_ok      BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    rejects      TEXT NOT NULL
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
