-- Audit emitters and privacy (issue 6): the auditor role, pseudonyms that
-- can be resolved while their subject exists, tombstones of erased
-- subjects, and the one narrow way to delete audit records: pruning below
-- a prune checkpoint.

ALTER TABLE accounts ADD COLUMN auditor INTEGER NOT NULL DEFAULT 0 CHECK (auditor IN (0, 1));

-- The pseudonym is kept next to its secret so an auditor can resolve it
-- with one lookup; deleting the row (erasure) removes both. Nothing wrote
-- this table before this migration, so it is recreated, not altered.
DROP TABLE pseudonym_secrets;
CREATE TABLE pseudonym_secrets (
    subject_id TEXT NOT NULL PRIMARY KEY CHECK (subject_id <> ''),
    pseudonym  TEXT NOT NULL UNIQUE CHECK (pseudonym <> ''),
    secret     BLOB NOT NULL CHECK (length(secret) > 0)
) STRICT;

-- Erased subjects, as a keyed hash of their id (never the id): a record
-- naming one after the erasure gets a one-off pseudonym instead of a new
-- secret that would link it to them again.
CREATE TABLE erased_subjects (
    tag BLOB NOT NULL PRIMARY KEY CHECK (length(tag) = 32)
) STRICT;

-- No indexes on audit_records beyond seq: every change appends a record,
-- and each index would add to that cost. Exports by subject or time and
-- pruning are rare and scan instead.

-- Records may be deleted only at or below the sequence number of a prune
-- checkpoint (retention). A forged prune checkpoint lets someone with SQL
-- access delete records, but its signature does not verify, and `rampart
-- audit verify` names it.
DROP TRIGGER audit_records_no_delete;
-- A prune checkpoint must name a record that exists, by its hash: a forged
-- one (its signature is checked by verify, not here) cannot unlock the
-- deletion of records it does not match.
CREATE TRIGGER audit_checkpoints_prune_matches BEFORE INSERT ON audit_checkpoints
WHEN NEW.kind = 'prune' AND NOT EXISTS (SELECT 1 FROM audit_records WHERE seq = NEW.seq AND hash = NEW.head)
BEGIN
    SELECT RAISE(ABORT, 'a prune checkpoint must sign an existing record');
END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE kind = 'prune' AND seq >= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only; only records below a prune checkpoint can be deleted');
END;
