-- Users of the web UI, their sessions, the audit log and secret keys' scopes (issue 17).
-- Append-only: never edit a released migration.
--
-- users: email_key is the address lowercased (unique: sign-in is case-insensitive), email
-- as the user typed it; password_hash an Argon2id PHC string; role admin|ops|csm|viewer;
-- a disabled user cannot sign in and their sessions end.
-- sessions: the cookie's random 256-bit id is never stored, only its SHA-256 (id_hash);
-- csrf is the token every form of the session carries. Times are ms since epoch.
-- audit_log: who (a user, a key or cairn itself) did what to what, detail as JSON text.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    disabled_at    INTEGER
);

CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    csrf        TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor_kind   TEXT NOT NULL,   -- user | key | system | anonymous
    actor_id     INTEGER,
    actor        TEXT NOT NULL,   -- the user's email or the key's prefix, as it was then
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log(action, id);

-- What a secret key may do on /api: read | write | admin. Keys made before scopes keep
-- every power they had.
ALTER TABLE api_keys ADD COLUMN scope TEXT;
UPDATE api_keys SET scope = 'admin' WHERE kind = 'secret';
