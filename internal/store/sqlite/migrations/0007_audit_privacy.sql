-- Audit emitters and privacy (issue 6): the auditor role, pseudonyms that
-- can be resolved while their subject exists, indexes for exports, and the
-- one narrow way to delete audit records: pruning below a prune checkpoint.

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

-- No indexes on audit_records beyond seq: every change appends a record,
-- and each index would add to that cost. Exports by subject or time and
-- pruning are rare and scan instead.

-- Records may be deleted only at or below the sequence number of a prune
-- checkpoint (retention). A forged prune checkpoint lets someone with SQL
-- access delete records, but its signature does not verify, and `rampart
-- audit verify` names it.
DROP TRIGGER audit_records_no_delete;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE kind = 'prune' AND seq >= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only; only records below a prune checkpoint can be deleted');
END;
