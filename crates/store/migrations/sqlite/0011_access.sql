-- People and access (SPEC 10). Passwords are kept as argon2id PHC strings; API tokens as
-- the SHA-256 of the token (hex), looked up by that hash: the token itself is shown once
-- and never stored.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    name          TEXT,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    name             TEXT    PRIMARY KEY,
    secret_sha256    TEXT    NOT NULL UNIQUE,
    hint             TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    agent            TEXT,
    capture_point_id TEXT,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    revoked_at       INTEGER
);

-- Console sessions: looked up by the SHA-256 of the cookie's secret. A session ends when
-- it has been idle too long or reached its lifetime (both judged by the server's clock);
-- disabling a user or changing its password deletes its sessions.
CREATE TABLE sessions (
    secret_sha256 TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id),
    csrf_token    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
