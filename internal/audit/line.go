package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampart-ml/rampart/internal/store"
)

// The JSON-lines form of the log, written by the Follower to its copies
// (a file, stdout for SIEMs) and by exports. One JSON object per line,
// each ending in "\n", in seq order, a checkpoint after the record it
// signs:
//
//	{"type":"record","seq":N,"time":"2025-06-07T10:11:12.000000013Z","actor":"p-…","actor_kind":"user",
//	 "source":"s-…","action":"grant.create","target_kind":"grant","target_domain":"com.acme",
//	 "target_id":"g-42","outcome":"success","reason":"","request_id":"…",
//	 "prev_hash":"<64 hex>","hash":"<64 hex>"}
//	{"type":"checkpoint","seq":N,"head":"<64 hex>","kind":"periodic","time":"…","signature":"<base64>"}
//
// (each object on one line). Every field is always present; times are
// RFC 3339 in UTC with nine fraction digits; hashes are lower-case hex;
// the signature is standard base64 with padding. A record line holds
// everything needed to recompute its hash (RecordHash over prev_hash,
// seq and the event fields), and a checkpoint line everything needed to
// check its signature with the audit public key, so a copy can be
// verified on its own and against the database (VerifyCopy).

// Line types.
const (
	LineRecord     = "record"
	LineCheckpoint = "checkpoint"
)

// MaxLineSize bounds one line of a copy (a record's fields are bounded
// by Validate; escaping can make them up to six times longer).
const MaxLineSize = 64 << 10

// Line is one parsed line of a copy: a record or a checkpoint.
type Line struct {
	Type       string                // LineRecord or LineCheckpoint
	Record     store.AuditRecord     // when Type is LineRecord
	Checkpoint store.AuditCheckpoint // when Type is LineCheckpoint
}

// recordLine is the wire form of a record line; field order is the
// line's.
type recordLine struct {
	Type         string `json:"type"`
	Seq          uint64 `json:"seq"`
	Time         string `json:"time"`
	Actor        string `json:"actor"`
	ActorKind    string `json:"actor_kind"`
	Source       string `json:"source"`
	Action       string `json:"action"`
	TargetKind   string `json:"target_kind"`
	TargetDomain string `json:"target_domain"`
	TargetID     string `json:"target_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	RequestID    string `json:"request_id"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
}

// checkpointLine is the wire form of a checkpoint line.
type checkpointLine struct {
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
	Head      string `json:"head"`
	Kind      string `json:"kind"`
	Time      string `json:"time"`
	Signature string `json:"signature"`
}

// MarshalRecordLine returns the line of r, ending in "\n".
func MarshalRecordLine(r store.AuditRecord) []byte {
	return marshalLine(recordLine{
		Type: LineRecord, Seq: r.Seq, Time: r.Time.UTC().Format(timeLayout),
		Actor: r.Actor, ActorKind: r.ActorKind, Source: r.Source, Action: r.Action,
		TargetKind: r.TargetKind, TargetDomain: r.TargetDomain, TargetID: r.TargetID,
		Outcome: r.Outcome, Reason: r.Reason, RequestID: r.RequestID,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	})
}

// MarshalCheckpointLine returns the line of c, ending in "\n".
func MarshalCheckpointLine(c store.AuditCheckpoint) []byte {
	return marshalLine(checkpointLine{
		Type: LineCheckpoint, Seq: c.Seq, Head: hex.EncodeToString(c.Head), Kind: c.Kind,
		Time: c.Time.UTC().Format(timeLayout), Signature: base64.StdEncoding.EncodeToString(c.Signature),
	})
}

func marshalLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // '<' stays '<' for whoever reads the copy
	// Encoding a struct of strings and integers cannot fail (strings that
	// are not UTF-8 are written with U+FFFD, and then fail the hash check).
	_ = enc.Encode(v)
	return b.Bytes()
}

// ParseLine parses one line of a copy (with or without its "\n"). It
// checks the line's form: known type, no unknown fields, a positive seq
// for a record, times, hashes of HashSize bytes, a signature of the
// Ed25519 size, a known checkpoint kind. Whether the record's hash and
// the checkpoint's signature are right is for VerifyCopy.
func ParseLine(b []byte) (Line, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > MaxLineSize {
		return Line{}, fmt.Errorf("audit line: longer than %d bytes", MaxLineSize)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Line{}, fmt.Errorf("audit line: %w", err)
	}
	switch head.Type {
	case LineRecord:
		var l recordLine
		if err := strictUnmarshal(b, &l); err != nil {
			return Line{}, err
		}
		r, err := l.record()
		return Line{Type: LineRecord, Record: r}, err
	case LineCheckpoint:
		var l checkpointLine
		if err := strictUnmarshal(b, &l); err != nil {
			return Line{}, err
		}
		c, err := l.checkpoint()
		return Line{Type: LineCheckpoint, Checkpoint: c}, err
	}
	return Line{}, fmt.Errorf("audit line: unknown type %q", head.Type)
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("audit line: %w", err)
	}
	if dec.More() {
		return errors.New("audit line: data after the object")
	}
	return nil
}

func (l recordLine) record() (store.AuditRecord, error) {
	var problems []error
	if l.Seq == 0 {
		problems = append(problems, errors.New("seq: must be positive"))
	}
	at, err := parseLineTime(l.Time)
	if err != nil {
		problems = append(problems, err)
	}
	prev, err := parseHash("prev_hash", l.PrevHash)
	if err != nil {
		problems = append(problems, err)
	}
	hash, err := parseHash("hash", l.Hash)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return store.AuditRecord{}, fmt.Errorf("audit record line %d: %w", l.Seq, errors.Join(problems...))
	}
	return store.AuditRecord{
		Seq: l.Seq, Time: at, Actor: l.Actor, ActorKind: l.ActorKind, Source: l.Source, Action: l.Action,
		TargetKind: l.TargetKind, TargetDomain: l.TargetDomain, TargetID: l.TargetID,
		Outcome: l.Outcome, Reason: l.Reason, RequestID: l.RequestID, PrevHash: prev, Hash: hash,
	}, nil
}

func (l checkpointLine) checkpoint() (store.AuditCheckpoint, error) {
	var problems []error
	switch l.Kind {
	case KindPeriodic, KindShutdown, KindPrune:
	default:
		problems = append(problems, fmt.Errorf("kind: unknown %q", l.Kind))
	}
	at, err := parseLineTime(l.Time)
	if err != nil {
		problems = append(problems, err)
	}
	head, err := parseHash("head", l.Head)
	if err != nil {
		problems = append(problems, err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(l.Signature)
	switch {
	case err != nil:
		problems = append(problems, fmt.Errorf("signature: %w", err))
	case len(sig) != ed25519.SignatureSize:
		problems = append(problems, fmt.Errorf("signature: %d bytes, want %d", len(sig), ed25519.SignatureSize))
	}
	if len(problems) > 0 {
		return store.AuditCheckpoint{}, fmt.Errorf("audit checkpoint line %d: %w", l.Seq, errors.Join(problems...))
	}
	return store.AuditCheckpoint{Seq: l.Seq, Head: head, Kind: l.Kind, Time: at, Signature: sig}, nil
}

func parseLineTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("time: not an RFC 3339 time")
	}
	return t.UTC(), nil
}

func parseHash(field, s string) ([]byte, error) {
	h, err := hex.DecodeString(s)
	if err != nil || len(h) != HashSize {
		return nil, fmt.Errorf("%s: want %d hex digits", field, 2*HashSize)
	}
	return h, nil
}
