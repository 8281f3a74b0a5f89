package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/rampart-ml/rampart/internal/store"
)

// ErrWrite means an audit record could not be written. The caller's
// transaction must fail with it (InTx then rolls the change back), and an
// API answers 503 (it implements httpapi.StatusError): the action did not
// happen because it could not be recorded.
var ErrWrite error = &unavailableError{
	msg:    "audit record could not be written",
	answer: "the audit record could not be written, so the action was not performed; try again later",
}

// unavailableError is an audit failure that refuses the action it was for.
// A more specific one (ErrQueueFull) names ErrWrite as its parent, so
// errors.Is(err, ErrWrite) holds for every audit failure.
type unavailableError struct {
	msg, answer string
	parent      error
}

func (e *unavailableError) Error() string { return e.msg }

func (e *unavailableError) Unwrap() error { return e.parent }

// HTTPStatus implements httpapi.StatusError: 503 audit_unavailable.
func (e *unavailableError) HTTPStatus() (int, string, string) {
	return 503, "audit_unavailable", e.answer
}

// HashSize is the length of record hashes (SHA-256).
const HashSize = sha256.Size

// recordDomain separates record hashes from every other use of SHA-256.
const recordDomain = "rampart audit record v1\x00"

// genesis is the previous hash of the first record (and the head of an
// empty log): all zeros.
var genesis [HashSize]byte

// GenesisHash returns the previous hash of record 1.
func GenesisHash() []byte { return append([]byte(nil), genesis[:]...) }

// RecordHash returns SHA-256(recordDomain ‖ len(prev) ‖ prev ‖ seq ‖
// len(event) ‖ event), where lengths and seq are 8-byte big-endian and
// event is the canonical encoding of e. The lengths make the input
// unambiguous whatever prev holds.
func RecordHash(prev []byte, seq uint64, e Event) []byte {
	return recordHash(make([]byte, 0, 512), prev, seq, e)
}

// recordHash is RecordHash with a scratch buffer for the input.
func recordHash(buf, prev []byte, seq uint64, e Event) []byte {
	buf = append(buf[:0], recordDomain...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(prev)))
	buf = append(buf, prev...)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	lenAt := len(buf)
	buf = binary.BigEndian.AppendUint64(buf, 0)
	buf = AppendCanonical(buf, e)
	binary.BigEndian.PutUint64(buf[lenAt:], uint64(len(buf)-lenAt-8)) // #nosec G115 -- a length, never negative
	sum := sha256.Sum256(buf)
	return sum[:]
}

// Append validates e and writes it as the next record of the log, in tx:
// it reads the head in the same transaction, so the new record chains to
// the record committed before it. Call it inside the InTx that makes the
// change e describes and return its error from there, so the change and
// its record commit together or not at all.
//
// The error wraps ErrInvalidEvent for a bad event and ErrWrite for a
// storage failure. On a store that admits concurrent writers a conflict on
// the sequence number (store.ErrConflict, also wrapped) means: retry the
// whole transaction.
func Append(ctx context.Context, tx store.Tx, e Event) (store.AuditRecord, error) {
	if err := e.Validate(); err != nil {
		return store.AuditRecord{}, fmt.Errorf("audit: %w", err) // e.Action may be the bad field
	}
	head, err := readHead(ctx, tx)
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return appendAfter(ctx, tx, head, e, nil)
}

// chainHead is where the next record goes: after seq, whose hash is hash
// (seq 0 and the genesis hash for an empty log).
type chainHead struct {
	seq  uint64
	hash []byte
}

// readHead reads the head of the log in tx.
func readHead(ctx context.Context, tx store.Tx) (chainHead, error) {
	seq, hash, ok, err := tx.Audit().AuditHeadLink(ctx)
	if err != nil {
		return chainHead{}, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	if !ok {
		return chainHead{seq: 0, hash: genesis[:]}, nil
	}
	return chainHead{seq: seq, hash: hash}, nil
}

// appendAfter writes the valid event e as the record after head, hashing
// with the scratch buffer buf (nil allocates one).
func appendAfter(ctx context.Context, tx store.Tx, head chainHead, e Event, buf []byte) (store.AuditRecord, error) {
	r := nextRecord(head, e, buf)
	if err := tx.Audit().AppendAuditRecord(ctx, r); err != nil {
		return store.AuditRecord{}, fmt.Errorf("audit %s: %w: %w", e.Action, ErrWrite, err)
	}
	return r, nil
}

// nextRecord returns the record of e after head, hashing with the scratch
// buffer buf (nil allocates one).
func nextRecord(head chainHead, e Event, buf []byte) store.AuditRecord {
	if buf == nil {
		buf = make([]byte, 0, 512)
	}
	seq := head.seq + 1
	return recordOf(seq, head.hash, recordHash(buf, head.hash, seq, e), e)
}

// recordOf builds the stored form of e.
func recordOf(seq uint64, prev, hash []byte, e Event) store.AuditRecord {
	return store.AuditRecord{
		Seq:          seq,
		Time:         e.Time.UTC(),
		Actor:        e.Actor,
		ActorKind:    e.ActorKind,
		Source:       e.Source,
		Action:       e.Action,
		TargetKind:   e.TargetKind,
		TargetDomain: e.TargetDomain,
		TargetID:     e.TargetID,
		Outcome:      e.Outcome,
		Reason:       e.Reason,
		RequestID:    e.RequestID,
		PrevHash:     prev,
		Hash:         hash,
	}
}

// EventOf returns the event a stored record holds.
func EventOf(r store.AuditRecord) Event {
	return Event{
		Time:         r.Time,
		Actor:        r.Actor,
		ActorKind:    r.ActorKind,
		Source:       r.Source,
		Action:       r.Action,
		TargetKind:   r.TargetKind,
		TargetDomain: r.TargetDomain,
		TargetID:     r.TargetID,
		Outcome:      r.Outcome,
		Reason:       r.Reason,
		RequestID:    r.RequestID,
	}
}
