package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// pseudonymSecretAD binds sealed pseudonym secrets to their purpose.
const pseudonymSecretAD = "audit-pseudonym-secret"

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

	// Pseudonyms of committed secrets, so most records need no lookup.
	// Writers are serialised by the store (one write transaction at a
	// time), which is what makes the rules in PseudonymOf sufficient.
	mu       sync.Mutex
	cache    map[string]string   // subject id → pseudonym
	creating map[string]store.Tx // subject id → transaction that created its secret, until seen committed
	erasures uint64              // bumped by Erase: a lookup that raced one does not cache
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
	return &Recorder{
		store: o.Store, sealer: o.Sealer, sourceKey: o.SourceKey, request: o.Request, now: o.Now,
		cache: make(map[string]string), creating: make(map[string]store.Tx),
	}, nil
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

// Write records e in a transaction of its own and returns once it is
// committed: for actions that change no state of their own (a token
// issued from a valid credential, a sensitive read), which must not
// happen unrecorded.
func (r *Recorder) Write(ctx context.Context, e Entry) error {
	return r.store.InTx(ctx, func(tx store.Tx) error { return r.Record(ctx, tx, e) })
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
	var actor, target string
	var err error
	if isSubject(d.actor.Kind) {
		if actor, err = r.PseudonymOf(ctx, tx, d.actor.ID); err != nil {
			return err
		}
	}
	if d.TargetSubject != "" {
		if target, err = r.PseudonymOf(ctx, tx, d.TargetSubject); err != nil {
			return err
		}
	}
	_, err = Append(ctx, tx, r.event(d, actor, target))
	return err
}

// PseudonymOf returns the pseudonym of subjectID, creating the subject's
// secret (sealed under the master key) in tx on first use.
//
// Only pseudonyms of committed secrets are cached: a secret created in tx
// is not cached while tx may still roll back (reading it again in tx does
// not count: it is remembered as created by tx); seeing it from another
// transaction means it committed. Erase drops the entry, and a lookup that
// overlapped an Erase does not cache what it read.
func (r *Recorder) PseudonymOf(ctx context.Context, tx store.Tx, subjectID string) (string, error) {
	if subjectID == "" {
		return "", fmt.Errorf("audit: %w: empty subject id", ErrInvalidEvent)
	}
	r.mu.Lock()
	p, ok := r.cache[subjectID]
	gen := r.erasures
	r.mu.Unlock()
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
		sealed, err := r.sealer.Seal(secret, []byte(pseudonymSecretAD))
		if err != nil {
			return "", fmt.Errorf("audit: seal pseudonym secret: %w: %w", ErrWrite, err)
		}
		p := Pseudonym(secret, subjectID)
		if err := a.SetPseudonymSecret(ctx, subjectID, p, sealed); err != nil {
			return "", fmt.Errorf("audit: pseudonym secret: %w: %w", ErrWrite, err)
		}
		r.mu.Lock()
		if len(r.creating) >= maxCached {
			clear(r.creating) // creations that rolled back; forgetting one only costs a lookup
		}
		r.creating[subjectID] = tx
		r.mu.Unlock()
		return p, nil
	default:
		return "", fmt.Errorf("audit: pseudonym secret: %w: %w", ErrWrite, err)
	}
}

// remember caches p for subjectID, read in tx, if it is known committed.
func (r *Recorder) remember(subjectID, p string, tx store.Tx, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if creator, ok := r.creating[subjectID]; ok {
		if creator == tx {
			return // created by tx itself: not committed yet
		}
		delete(r.creating, subjectID)
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
	r.mu.Lock()
	delete(r.cache, subjectID)
	r.erasures++
	r.mu.Unlock()
	err := tx.Audit().DeletePseudonymSecret(ctx, subjectID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("erase pseudonym secret: %w: %w", ErrWrite, err)
	}
	return nil
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

// Submit records e without making the caller wait for the commit: for
// records on hot paths that change no state (denials, sampled inference).
// It returns an error wrapping ErrWrite at once when the record cannot be
// taken, so the caller refuses the action rather than let it pass
// unrecorded.
//
// TODO(issue 6): a bounded queue written in batches; until then it writes
// synchronously.
func (r *Recorder) Submit(ctx context.Context, e Entry) error {
	return r.Write(ctx, e)
}

// Available reports whether the audit log takes records (nil) or why not
// (an error wrapping ErrWrite), so requests can be refused before they
// start work they could not record.
func (r *Recorder) Available() error { return nil }
