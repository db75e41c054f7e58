-- An entity's external id in one source (an account's CRM id, its product id): the
-- engine reads them for every account on each reload of the records. With only
-- (entity_kind, entity_id), the planner preferred the primary key (entity_kind, source,
-- external_id) and scanned every account's id of that source once per account: 70 ms
-- for 500 accounts, quadratic in their number. This index answers the lookup by seeking,
-- and holds external_id so the table is not read. The old index is its prefix.
-- Append-only: never edit a released migration.

DROP INDEX external_ids_entity;
CREATE INDEX external_ids_entity_source ON external_ids(entity_kind, entity_id, source, external_id);
