// Package audit owns Rampart's tamper-evident audit log: the Event type and
// its validation, the canonical encoding and hash chain of records, signed
// checkpoints of the chain head (with the Ed25519 key that makes them), the
// offline and online verification of the whole log, and actor pseudonyms.
//
// A state change and its record are written in the same store transaction
// (Recorder.Record, or Append, inside the caller's InTx), so a change never
// commits without its record: if the record cannot be written the change
// is rolled back (fail-closed). Each record carries the SHA-256 of the
// previous one; a checkpoint signs the head, so rewriting the chain after
// an edit is caught too, by a public key kept outside the database.
//
// Around that core:
//
//   - The Recorder's queue (writer.go): Submit drafts a record at once and
//     queues it for a writer goroutine; Write waits for its commit. The
//     writer commits what has queued in one transaction (group commit, up
//     to 512 records), retrying records one by one if a batch fails. A
//     full queue refuses the action (ErrQueueFull, 503) or, if so
//     configured, drops the record and counts it.
//   - The Follower (follow.go) copies committed records to a JSON-lines
//     file and to stdout (line.go has the format) and signs periodic and
//     shutdown checkpoints; VerifyCopy checks a copy against the database,
//     which catches records cut from the end of the log with the
//     checkpoints that covered them.
//   - Prune (prune.go) removes records past retention behind a signed
//     prune checkpoint, which Verify accepts as the start of the log.
//   - The Sampler (sample.go) picks the allowed inference calls that are
//     recorded and keeps exact per-service counts of all of them.
//
// The package must never record a user name, e-mail or IP address in clear
// (actors are pseudonyms, Validate refuses addresses as sources), never log
// or store the signing key in clear, and never change or delete a record
// except by pruning below a signed prune checkpoint: the log is
// append-only.
package audit
