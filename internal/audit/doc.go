// Package audit owns Rampart's tamper-evident audit log: the Event type and
// its validation, the canonical encoding and hash chain of records, signed
// checkpoints of the chain head (with the Ed25519 key that makes them), the
// offline and online verification of the whole log, and actor pseudonyms.
//
// A state change and its record are written in the same store transaction
// (Append inside the caller's InTx), so a change never commits without its
// record: if the record cannot be written the change is rolled back
// (fail-closed). Each record carries the SHA-256 of the previous one; a
// checkpoint signs the head, so rewriting the chain after an edit is caught
// too, by a public key kept outside the database.
//
// The package must never record a user name, e-mail or IP address in clear
// (actors are pseudonyms, Validate refuses addresses as sources), never log
// or store the signing key in clear, and never change or delete a record:
// the log is append-only.
package audit
