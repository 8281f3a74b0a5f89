package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// pseudonymSecretAD binds sealed pseudonym secrets to their purpose.
const pseudonymSecretAD = "audit-pseudonym-secret"

// PseudonymSecretAD is the associated data pseudonym secrets are sealed
// with (master key rotation re-seals them with the same).
func PseudonymSecretAD() []byte { return []byte(pseudonymSecretAD) }

// Target is what an audited action was done to. A user or service account
// target is named with Entry.TargetSubject instead, so it is recorded as
// a pseudonym.
type Target struct {
	Kind   string
	Domain string
	ID     string
}

// Actor names who acted when it is not the principal of the request:
// logins (nobody is authenticated yet) and the server itself.
type Actor struct {
	// ID is a subject id (account, service account, federated user),
	// recorded as its pseudonym; for ActorSystem it is the component name.
	ID   string
	Kind string // ActorUser, ActorServiceAccount, ActorSystem or ActorAnonymous
}

// Entry is what an emitter knows about an action. The Recorder adds who
// (the principal in the context, as a pseudonym), from where (a pseudonym
// of the client address), when, and the request id.
type Entry struct {
	Action string
	Target Target
	// TargetSubject, when set, is the id of the user or service account
	// the action was done to; it is recorded as the target id in
	// pseudonym form (Target.Kind must say which kind).
	TargetSubject string
	// Outcome defaults to OutcomeSuccess.
	Outcome string
	// Reason is machine text for failures and denials; no personal data.
	Reason string
	// Actor overrides the principal in the context.
	Actor *Actor
}

// RequestInfo is what the Recorder needs to know about the request an
// entry comes from.
type RequestInfo struct {
	ID         string
	ClientAddr string // host or host:port as the server saw it; "" if none
}

// RecorderOptions configure NewRecorder.
type RecorderOptions struct {
	Store  store.Store
	Sealer *secrets.Sealer
	// SourceKey keys the daily pseudonyms of client addresses.
	SourceKey []byte
	// Request returns the request ctx belongs to (httpapi's request id and
	// client address); nil records neither.
	Request func(ctx context.Context) RequestInfo
	Now     func() time.Time

	// QueueSize bounds the records waiting for the writer (default
	// DefaultQueueSize).
	QueueSize int
	// QueueFull is what Submit does when the queue is full: QueueRefuse
	// (the default: the caller refuses the action) or QueueDrop.
	QueueFull QueuePolicy
	// OnCommit, when set, is called after each transaction the writer
	// commits (the Follower's Notify).
	OnCommit func()
	// ProbeInterval is how often the writer, after a failed write, checks
	// whether the store works again (default 1 s).
	ProbeInterval time.Duration
	// Log receives warnings about dropped and lost records (action and
	// error only); nil discards them.
	Log *slog.Logger
}

// Recorder turns what happened into audit records: it names subjects by
// pseudonym and client addresses by a keyed hash that changes daily, and
// appends the record in the caller's transaction.
type Recorder struct {
	store     store.Store
	sealer    *secrets.Sealer
	sourceKey []byte
	request   func(ctx context.Context) RequestInfo
	now       func() time.Time

	writer // the queue and its goroutine (writer.go)

	// headHint is the head after the last records this Recorder stored, so
	// most appends need not read it. It can be ahead of the log (the
	// transaction rolled back): the store then refuses the record, which
	// does not link to the real head, and the batch reads the head.
	headHint atomic.Pointer[chainHead]

	// Pseudonyms of committed secrets, so most records need no lookup.
	// Writers are serialised by the store (one write transaction at a
	// time), which is what makes the rules in PseudonymOf sufficient.
	cacheMu    sync.Mutex
	cache      map[string]string   // subject id → pseudonym
	creatingTx store.Tx            // the transaction that created the secrets in creating
	creating   map[string]struct{} // subjects whose secret creatingTx created
	erasures   uint64              // bumped by Erase: a lookup that raced one does not cache
}

// maxCached bounds the pseudonym cache; it is emptied when full.
const maxCached = 100_000

// NewRecorder returns a Recorder writing to o.Store.
func NewRecorder(o RecorderOptions) (*Recorder, error) {
	if o.Store == nil || o.Sealer == nil {
		return nil, errors.New("audit recorder: store and sealer are required")
	}
	if len(o.SourceKey) < 32 {
		return nil, errors.New("audit recorder: source key must be at least 32 bytes")
	}
	if o.Request == nil {
		o.Request = func(context.Context) RequestInfo { return RequestInfo{} }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Recorder{
		store: o.Store, sealer: o.Sealer, sourceKey: o.SourceKey, request: o.Request, now: o.Now,
		cache: make(map[string]string), creating: make(map[string]struct{}),
	}
	if err := r.writer.init(o); err != nil {
		return nil, err
	}
	return r, nil
}

// Record appends the record of e in tx. Call it inside the InTx that makes
// the change e describes and return its error from there: the change and
// its record commit together or not at all (the error wraps ErrWrite, and
// the API answers 503).
func (r *Recorder) Record(ctx context.Context, tx store.Tx, e Entry) error {
	d, err := r.draft(ctx, e)
	if err != nil {
		return err
	}
	return r.append(ctx, tx, d)
}

// draft is an entry with everything taken from the request, so it can be
// appended later, outside the request.
type draft struct {
	Entry
	actor  Actor
	source string
	reqID  string
	at     time.Time
}

// draft captures e's request context and checks e, so a bad entry fails
// at the emitter, not in a batch with others.
func (r *Recorder) draft(ctx context.Context, e Entry) (draft, error) {
	info := r.request(ctx)
	d := draft{Entry: e, reqID: info.ID, at: r.now()}
	if d.Outcome == "" {
		d.Outcome = OutcomeSuccess
	}
	switch {
	case e.Actor != nil:
		d.actor = *e.Actor
	default:
		d.actor = actorOf(ctx)
	}
	if info.ClientAddr != "" {
		d.source = r.sourcePseudonym(info.ClientAddr, d.at)
	}
	// Validate with placeholder pseudonyms: their form is always right.
	if err := r.event(d, placeholder, placeholder).Validate(); err != nil {
		return draft{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if e.TargetSubject != "" && e.Target.ID != "" {
		return draft{}, fmt.Errorf("audit %s: %w: both a target id and a target subject", e.Action, ErrInvalidEvent)
	}
	return d, nil
}

// placeholder is a well-formed pseudonym used only to validate drafts.
var placeholder = pseudonymPrefix + hex.EncodeToString(make([]byte, sha256.Size))

// actorOf names the principal in ctx, or the anonymous actor.
func actorOf(ctx context.Context) Actor {
	p, ok := principal.FromContext(ctx)
	switch {
	case !ok || p.ID == "":
		return Actor{ID: ActorAnonymous, Kind: ActorAnonymous}
	case p.Kind == principal.ServiceAccount:
		return Actor{ID: p.ID, Kind: ActorServiceAccount}
	default:
		return Actor{ID: p.ID, Kind: ActorUser}
	}
}

// event builds the Event of d with the given actor and target pseudonyms.
func (r *Recorder) event(d draft, actor, target string) Event {
	e := Event{
		Time: d.at, Actor: d.actor.ID, ActorKind: d.actor.Kind, Source: d.source, Action: d.Action,
		TargetKind: d.Target.Kind, TargetDomain: d.Target.Domain, TargetID: d.Target.ID,
		Outcome: d.Outcome, Reason: d.Reason, RequestID: d.reqID,
	}
	if isSubject(d.actor.Kind) {
		e.Actor = actor
	}
	if d.TargetSubject != "" {
		e.TargetID = target
	}
	return e
}

// isSubject reports whether an actor kind is recorded as a pseudonym.
func isSubject(kind string) bool { return kind == ActorUser || kind == ActorServiceAccount }

// append resolves d's pseudonyms in tx and appends its record.
func (r *Recorder) append(ctx context.Context, tx store.Tx, d draft) error {
	b := r.newBatch(tx)
	if err := b.append(ctx, d); err != nil {
		return err
	}
	return b.flush(ctx)
}

// batch appends drafts in one transaction. It reads the head once and
// keeps each subject's pseudonym for the rest of the transaction: both
// stay what they were read as until it ends, because nothing else writes
// in it, and neither outlives it. Records are chained as they are added
// and stored by flush.
type batch struct {
	r       *Recorder
	tx      store.Tx
	head    chainHead
	loaded  bool // head is known
	guessed bool // head is the Recorder's hint, not read in tx
	names   map[string]string
	buf     []byte
	pending []store.AuditRecord
}

// recordsAppender is a store.Audit that stores many records at once more
// cheaply than one at a time (SQLite prepares the insert once).
type recordsAppender interface {
	AppendAuditRecords(ctx context.Context, recs []store.AuditRecord) error
}

func (r *Recorder) newBatch(tx store.Tx) *batch { return &batch{r: r, tx: tx} }

// append appends the record of d after the last one b appended (or the
// head of the log). d was validated when it was drafted and pseudonyms
// always have the right form, so the event is not validated again.
func (b *batch) append(ctx context.Context, d draft) error {
	if !b.loaded {
		b.buf = make([]byte, 0, 1024)
		if hint := b.r.headHint.Load(); hint != nil {
			b.head, b.loaded, b.guessed = *hint, true, true
		} else if err := b.readHead(ctx); err != nil {
			return fmt.Errorf("audit %s: %w", d.Action, err)
		}
	}
	var actor, target string
	var err error
	if isSubject(d.actor.Kind) {
		if actor, err = b.pseudonym(ctx, d.actor.ID); err != nil {
			return err
		}
	}
	if d.TargetSubject != "" {
		if target, err = b.pseudonym(ctx, d.TargetSubject); err != nil {
			return err
		}
	}
	rec := nextRecord(b.head, b.r.event(d, actor, target), b.buf)
	b.pending = append(b.pending, rec)
	b.head = chainHead{seq: rec.Seq, hash: rec.Hash}
	return nil
}

// flush stores the records added since the last flush.
func (b *batch) flush(ctx context.Context) error {
	err := b.store(ctx)
	if errors.Is(err, store.ErrConflict) && b.guessed {
		// The hint was stale (a transaction that used it rolled back):
		// chain the records again to the head read in tx.
		if err = b.readHead(ctx); err == nil {
			b.rechain()
			err = b.store(ctx)
		}
	}
	if err != nil {
		b.r.headHint.Store(nil)
		return err
	}
	if n := len(b.pending); n > 0 {
		last := b.pending[n-1]
		b.r.headHint.Store(&chainHead{seq: last.Seq, hash: last.Hash})
	}
	b.pending = b.pending[:0]
	return nil
}

// readHead reads the head of the log in b's transaction.
func (b *batch) readHead(ctx context.Context) error {
	head, err := readHead(ctx, b.tx)
	if err != nil {
		return err
	}
	b.head, b.loaded, b.guessed = head, true, false
	return nil
}

// rechain chains the pending records again after b.head.
func (b *batch) rechain() {
	for i, rec := range b.pending {
		b.pending[i] = nextRecord(b.head, EventOf(rec), b.buf)
		b.head = chainHead{seq: b.pending[i].Seq, hash: b.pending[i].Hash}
	}
}

// store writes the pending records in b's transaction.
func (b *batch) store(ctx context.Context) error {
	recs := b.pending
	a := b.tx.Audit()
	if ra, ok := a.(recordsAppender); ok && len(recs) > 1 {
		if err := ra.AppendAuditRecords(ctx, recs); err != nil {
			return fmt.Errorf("audit records %d to %d: %w: %w", recs[0].Seq, recs[len(recs)-1].Seq, ErrWrite, err)
		}
		return nil
	}
	for _, rec := range recs {
		if err := a.AppendAuditRecord(ctx, rec); err != nil {
			return fmt.Errorf("audit %s: %w: %w", rec.Action, ErrWrite, err)
		}
	}
	return nil
}

func (b *batch) pseudonym(ctx context.Context, subjectID string) (string, error) {
	if p, ok := b.names[subjectID]; ok {
		return p, nil
	}
	p, err := b.r.PseudonymOf(ctx, b.tx, subjectID)
	if err != nil {
		return "", err
	}
	if b.names == nil {
		b.names = make(map[string]string)
	}
	b.names[subjectID] = p
	return p, nil
}

// PseudonymOf returns the pseudonym of subjectID, creating the subject's
// secret (sealed under the master key) in tx on first use.
//
// Only pseudonyms of committed secrets are cached: a secret created in tx
// is not cached while tx may still roll back (reading it again in tx does
// not count: it is remembered as created by tx). Write transactions run
// one at a time, so a secret read in any other transaction has committed.
// Erase drops the entry, and a lookup that overlapped an Erase does not
// cache what it read.
//
// An erased subject gets no new secret: a record that names them after
// the erasure carries a one-off pseudonym, unlinkable to them and to their
// other records.
func (r *Recorder) PseudonymOf(ctx context.Context, tx store.Tx, subjectID string) (string, error) {
	if subjectID == "" {
		return "", fmt.Errorf("audit: %w: empty subject id", ErrInvalidEvent)
	}
	r.cacheMu.Lock()
	p, ok := r.cache[subjectID]
	gen := r.erasures
	r.cacheMu.Unlock()
	if ok {
		return p, nil
	}
	a := tx.Audit()
	sealed, err := a.PseudonymSecret(ctx, subjectID)
	switch {
	case err == nil:
		secret, err := r.sealer.Open(sealed, []byte(pseudonymSecretAD))
		if err != nil {
			return "", fmt.Errorf("audit: pseudonym secret: %w: %w", ErrWrite, err)
		}
		p := Pseudonym(secret, subjectID)
		r.remember(subjectID, p, tx, gen)
		return p, nil
	case errors.Is(err, store.ErrNotFound):
		secret, err := NewPseudonymSecret()
		if err != nil {
			return "", fmt.Errorf("audit: %w: %w", ErrWrite, err)
		}
		erased, err := a.IsErasedSubject(ctx, r.erasedTag(subjectID))
		if err != nil {
			return "", fmt.Errorf("audit: %w: %w", ErrWrite, err)
		}
		if erased {
			return Pseudonym(secret, subjectID), nil // the secret is never stored
		}
		sealed, err := r.sealer.Seal(secret, []byte(pseudonymSecretAD))
		if err != nil {
			return "", fmt.Errorf("audit: seal pseudonym secret: %w: %w", ErrWrite, err)
		}
		p := Pseudonym(secret, subjectID)
		if err := a.SetPseudonymSecret(ctx, subjectID, p, sealed); err != nil {
			return "", fmt.Errorf("audit: pseudonym secret: %w: %w", ErrWrite, err)
		}
		r.cacheMu.Lock()
		if r.creatingTx != tx {
			// Earlier transactions have ended; their secrets, if they
			// committed, are seen from other transactions from now on.
			r.creatingTx = tx
			clear(r.creating)
		}
		r.creating[subjectID] = struct{}{}
		r.cacheMu.Unlock()
		return p, nil
	default:
		return "", fmt.Errorf("audit: pseudonym secret: %w: %w", ErrWrite, err)
	}
}

// remember caches p for subjectID, read in tx, if it is known committed.
func (r *Recorder) remember(subjectID, p string, tx store.Tx, gen uint64) {
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	if _, ok := r.creating[subjectID]; ok && r.creatingTx == tx {
		return // created by tx itself: not committed yet
	}
	if r.erasures != gen {
		return
	}
	if len(r.cache) >= maxCached {
		clear(r.cache)
	}
	r.cache[subjectID] = p
}

// ErrUnknownPseudonym means a pseudonym does not resolve: it never
// existed, or its subject was erased.
var ErrUnknownPseudonym = errors.New("unknown pseudonym")

// Resolve returns the subject id pseudonym stands for while the subject's
// secret exists, or ErrUnknownPseudonym. The secret is checked, not only
// the stored pseudonym, so a row edited by hand does not resolve.
func (r *Recorder) Resolve(ctx context.Context, tx store.Tx, pseudonym string) (string, error) {
	if !IsPseudonym(pseudonym) {
		return "", ErrUnknownPseudonym
	}
	a := tx.Audit()
	subject, err := a.SubjectByPseudonym(ctx, pseudonym)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnknownPseudonym
	}
	if err != nil {
		return "", fmt.Errorf("resolve pseudonym: %w", err)
	}
	sealed, err := a.PseudonymSecret(ctx, subject)
	if err != nil {
		return "", fmt.Errorf("resolve pseudonym: %w", err)
	}
	secret, err := r.sealer.Open(sealed, []byte(pseudonymSecretAD))
	if err != nil {
		return "", fmt.Errorf("resolve pseudonym: %w", err)
	}
	if !hmac.Equal([]byte(Pseudonym(secret, subject)), []byte(pseudonym)) {
		return "", ErrUnknownPseudonym
	}
	return subject, nil
}

// Erase deletes subjectID's pseudonym secret in tx (crypto-shredding):
// their records stay and the chain still verifies, but nothing links the
// pseudonym to them any more. A subject without a secret (never recorded)
// is not an error.
func (r *Recorder) Erase(ctx context.Context, tx store.Tx, subjectID string) error {
	r.cacheMu.Lock()
	delete(r.cache, subjectID)
	r.erasures++
	r.cacheMu.Unlock()
	err := tx.Audit().DeletePseudonymSecret(ctx, subjectID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("erase pseudonym secret: %w: %w", ErrWrite, err)
	}
	if err := tx.Audit().AddErasedSubject(ctx, r.erasedTag(subjectID)); err != nil {
		return fmt.Errorf("erase pseudonym secret: %w: %w", ErrWrite, err)
	}
	return nil
}

// erasedDomain separates tombstone tags from every other HMAC use.
const erasedDomain = "rampart audit erased subject v1\x00"

// erasedTag is the tombstone of subjectID: a keyed hash, so the table of
// erased subjects names nobody.
func (r *Recorder) erasedTag(subjectID string) []byte {
	m := hmac.New(sha256.New, r.sourceKey)
	m.Write([]byte(erasedDomain))
	m.Write([]byte(subjectID))
	return m.Sum(nil)
}

// sourceDomain separates source pseudonyms from every other HMAC use.
const sourceDomain = "rampart audit source v1\x00"

// sourcePseudonym returns "s-" and a keyed hash of addr's host under a key
// that changes every UTC day: requests from one address can be linked
// within a day (enough to follow an attack), not across days, and the
// address cannot be read back.
func (r *Recorder) sourcePseudonym(addr string, at time.Time) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	day := hmac.New(sha256.New, r.sourceKey)
	day.Write([]byte(sourceDomain))
	day.Write([]byte(at.UTC().Format(time.DateOnly)))
	m := hmac.New(sha256.New, day.Sum(nil))
	m.Write([]byte(host))
	return "s-" + hex.EncodeToString(m.Sum(nil)[:16])
}
