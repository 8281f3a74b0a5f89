-- The model registry (issue 7): models, their immutable versions and the
-- files each version holds, and the signer keys trusted per domain.
-- Names and ids are validated by internal/registry; the schema keeps the
-- records consistent.

-- A model's domain is a domain's name, or '*' for a model without one (it
-- has no row to reference: the triggers enforce the reference, as for
-- grants).
CREATE TABLE models (
    id          TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    domain      TEXT NOT NULL CHECK (domain <> ''),
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX models_domain ON models(domain);

CREATE TRIGGER models_domain_insert BEFORE INSERT ON models
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'model names an unknown domain');
END;
CREATE TRIGGER models_domain_update BEFORE UPDATE OF domain ON models
BEGIN
    SELECT RAISE(ABORT, 'a model''s domain is part of its id and cannot change');
END;
CREATE TRIGGER domains_in_use_by_models BEFORE DELETE ON domains
WHEN EXISTS (SELECT 1 FROM models WHERE domain = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'domain is named by a model');
END;

-- A version is immutable once written, except its state (quarantine).
CREATE TABLE model_versions (
    model_id       TEXT NOT NULL REFERENCES models(id) ON DELETE RESTRICT,
    version        TEXT NOT NULL CHECK (version <> ''),
    state          TEXT NOT NULL CHECK (state IN ('active', 'quarantined')),
    state_reason   TEXT NOT NULL,
    model_file     TEXT NOT NULL CHECK (model_file <> ''),
    subject_digest TEXT NOT NULL CHECK (length(subject_digest) = 64),
    signed         INTEGER NOT NULL CHECK (signed IN (0, 1)),
    signer_key_id  TEXT NOT NULL,
    verified_at    TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (model_id, version)
) STRICT;

CREATE TRIGGER model_versions_immutable BEFORE UPDATE ON model_versions
WHEN NEW.model_id IS NOT OLD.model_id OR NEW.version IS NOT OLD.version
  OR NEW.model_file IS NOT OLD.model_file OR NEW.subject_digest IS NOT OLD.subject_digest
  OR NEW.signed IS NOT OLD.signed OR NEW.signer_key_id IS NOT OLD.signer_key_id
  OR NEW.verified_at IS NOT OLD.verified_at OR NEW.metadata IS NOT OLD.metadata
  OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'model versions are immutable');
END;

-- The files of a version (including model.sig), by path; digest is the
-- SHA-256 of the plaintext, which is also the blob's content address in
-- the artifact store of the model's domain.
CREATE TABLE model_files (
    model_id TEXT NOT NULL,
    version  TEXT NOT NULL,
    path     TEXT NOT NULL CHECK (path <> ''),
    size     INTEGER NOT NULL CHECK (size >= 0),
    digest   TEXT NOT NULL CHECK (length(digest) = 64),
    PRIMARY KEY (model_id, version, path),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version) ON DELETE CASCADE
) STRICT;
CREATE INDEX model_files_digest ON model_files(digest);

CREATE TRIGGER model_files_immutable BEFORE UPDATE ON model_files
BEGIN
    SELECT RAISE(ABORT, 'model files are immutable');
END;

-- Public keys trusted to sign the models of a domain (and its subdomains),
-- or of models without a domain ('*').
CREATE TABLE signer_keys (
    id          TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    domain      TEXT NOT NULL CHECK (domain <> ''),
    public_key  TEXT NOT NULL CHECK (public_key <> ''),
    algorithm   TEXT NOT NULL,
    description TEXT NOT NULL,
    not_before  TEXT NOT NULL,
    not_after   TEXT,
    revoked_at  TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX signer_keys_domain ON signer_keys(domain);

CREATE TRIGGER signer_keys_domain_insert BEFORE INSERT ON signer_keys
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'signer key names an unknown domain');
END;
CREATE TRIGGER domains_in_use_by_signer_keys BEFORE DELETE ON domains
WHEN EXISTS (SELECT 1 FROM signer_keys WHERE domain = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'domain is named by a signer key');
END;
-- Only a revoked key can be deleted: a trusted one is revoked first.
CREATE TRIGGER signer_keys_delete_revoked BEFORE DELETE ON signer_keys
WHEN OLD.revoked_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'revoke a signer key before deleting it');
END;

-- The domains (or '*') whose models may be admitted unsigned. Signed-only
-- is the default: a row here is an explicit, audited exception that
-- rampart doctor flags.
CREATE TABLE unsigned_domains (
    domain TEXT NOT NULL PRIMARY KEY CHECK (domain <> ''),
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
) STRICT;
CREATE TRIGGER unsigned_domains_insert BEFORE INSERT ON unsigned_domains
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'unsigned admission names an unknown domain');
END;
CREATE TRIGGER domains_delete_unsigned AFTER DELETE ON domains
BEGIN
    DELETE FROM unsigned_domains WHERE domain = OLD.name;
END;

