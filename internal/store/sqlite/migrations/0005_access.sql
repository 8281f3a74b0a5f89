-- Access control: domains, grants of a privilege on a domain (or on the
-- wildcard '*') to a user, group or service account, and a counter that
-- every change to either bumps in the same transaction, so caches in other
-- processes can tell cheaply whether to reload. Names are validated by
-- internal/access; the schema only keeps the records consistent.
CREATE TABLE domains (
    name       TEXT NOT NULL PRIMARY KEY CHECK (name <> '' AND name <> '*'),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- domain cannot reference domains(name): '*' has no row. The triggers below
-- enforce the reference instead, and report a violation with RAISE, i.e.
-- as SQLITE_CONSTRAINT_TRIGGER.
CREATE TABLE grants (
    id           TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group', 'service-account')),
    subject_id   TEXT NOT NULL CHECK (subject_id <> ''),
    domain       TEXT NOT NULL CHECK (domain <> ''),
    privilege    TEXT NOT NULL CHECK (privilege IN ('infer', 'read', 'all')),
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (subject_kind, subject_id, domain)
) STRICT;
CREATE INDEX grants_domain ON grants(domain);

CREATE TRIGGER grants_domain_insert BEFORE INSERT ON grants
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'grant names an unknown domain');
END;
CREATE TRIGGER grants_domain_update BEFORE UPDATE OF domain ON grants
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'grant names an unknown domain');
END;
CREATE TRIGGER domains_in_use_delete BEFORE DELETE ON domains
WHEN EXISTS (SELECT 1 FROM grants WHERE domain = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'domain is named by a grant');
END;
CREATE TRIGGER domains_in_use_rename BEFORE UPDATE OF name ON domains
WHEN NEW.name <> OLD.name AND EXISTS (SELECT 1 FROM grants WHERE domain = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'domain is named by a grant');
END;

-- One row. SQLite triggers fire per row, so a statement that changes n rows
-- bumps the version n times: callers may rely on it changing, not on by how
-- much. A statement that fails is undone with its triggers' changes.
CREATE TABLE access_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL CHECK (version >= 0)
) STRICT;
INSERT INTO access_version (id, version) VALUES (1, 0);

CREATE TRIGGER access_version_domain_insert AFTER INSERT ON domains
BEGIN
    UPDATE access_version SET version = version + 1;
END;
CREATE TRIGGER access_version_domain_update AFTER UPDATE ON domains
BEGIN
    UPDATE access_version SET version = version + 1;
END;
CREATE TRIGGER access_version_domain_delete AFTER DELETE ON domains
BEGIN
    UPDATE access_version SET version = version + 1;
END;
CREATE TRIGGER access_version_grant_insert AFTER INSERT ON grants
BEGIN
    UPDATE access_version SET version = version + 1;
END;
CREATE TRIGGER access_version_grant_update AFTER UPDATE ON grants
BEGIN
    UPDATE access_version SET version = version + 1;
END;
CREATE TRIGGER access_version_grant_delete AFTER DELETE ON grants
BEGIN
    UPDATE access_version SET version = version + 1;
END;
