-- The tamper-evident audit log (internal/audit): records chained by
-- SHA-256, signed checkpoints of the chain head, and the per-subject
-- secrets that actor pseudonyms are keyed with.
--
-- Records and checkpoints are append-only: the triggers below refuse every
-- UPDATE and DELETE, whoever issues it. They stop mistakes and SQL
-- injection, not an attacker who can write the file (and drop them); that
-- one is caught by `rampart audit verify`. Pruning will come with a signed
-- "prune" checkpoint and its own, narrow, way past these triggers.
CREATE TABLE audit_records (
    seq           INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    time          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_kind    TEXT NOT NULL,
    source        TEXT NOT NULL,
    action        TEXT NOT NULL,
    target_kind   TEXT NOT NULL,
    target_domain TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL
) STRICT;

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
-- INSERT OR REPLACE deletes the row it replaces without firing DELETE
-- triggers (recursive_triggers is off), so refuse an existing seq here.
CREATE TRIGGER audit_records_no_replace BEFORE INSERT ON audit_records
WHEN EXISTS (SELECT 1 FROM audit_records WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- id only keeps the order in which checkpoints at the same seq were added.
CREATE TABLE audit_checkpoints (
    id        INTEGER NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL CHECK (seq >= 0),
    head      BLOB NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('periodic', 'shutdown', 'prune')),
    time      TEXT NOT NULL,
    signature BLOB NOT NULL
) STRICT;
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints(seq, id);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_replace BEFORE INSERT ON audit_checkpoints
WHEN EXISTS (SELECT 1 FROM audit_checkpoints WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

-- The secret is opaque here: the caller seals it under the master key.
-- Deleting a row is erasure by crypto-shredding.
CREATE TABLE pseudonym_secrets (
    subject_id TEXT NOT NULL PRIMARY KEY CHECK (subject_id <> ''),
    secret     BLOB NOT NULL CHECK (length(secret) > 0)
) STRICT;
