-- Identity: account status and second factor, service accounts with their
-- credentials, and token families (sessions) with rotated refresh tokens.
-- Secrets are never stored in clear: TOTP secrets are sealed under the
-- master key, client secrets and refresh tokens are stored as SHA-256.
ALTER TABLE accounts ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
ALTER TABLE accounts ADD COLUMN anonymized INTEGER NOT NULL DEFAULT 0 CHECK (anonymized IN (0, 1));
ALTER TABLE accounts ADD COLUMN totp_secret BLOB;
ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

-- owner_id is NO ACTION, not RESTRICT: with immediate foreign keys both
-- refuse to delete an owner, but SQLite reports a RESTRICT failure as a
-- trigger error (SQLITE_CONSTRAINT_TRIGGER), not as a foreign key one.
CREATE TABLE service_accounts (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name        TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    description TEXT    NOT NULL,
    owner_id    TEXT    NOT NULL REFERENCES accounts(id) ON DELETE NO ACTION,
    disabled    INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    expires_at  TEXT,
    created_at  TEXT    NOT NULL
) STRICT;
CREATE INDEX service_accounts_owner ON service_accounts(owner_id);

CREATE TABLE client_secrets (
    id                 TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    service_account_id TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    hash               BLOB NOT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT
) STRICT;
CREATE INDEX client_secrets_account ON client_secrets(service_account_id);

CREATE TABLE client_keys (
    service_account_id TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    id                 TEXT NOT NULL CHECK (id <> ''),
    public_key         BLOB NOT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT,
    PRIMARY KEY (service_account_id, id)
) STRICT;

-- scopes and amr are space-separated (OAuth scope syntax).
CREATE TABLE sessions (
    id         TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    subject    TEXT NOT NULL CHECK (subject <> ''),
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    amr        TEXT NOT NULL,
    auth_time  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
CREATE INDEX sessions_subject ON sessions(subject);
CREATE INDEX sessions_revoked ON sessions(expires_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    hash       BLOB NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE revoked_tokens (
    id         TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at);
