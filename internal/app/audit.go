package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// openKeys loads (or creates) the master key under DATA_DIR/keys and the
// sealer every stored secret goes through.
func (a *App) openKeys() (keysDir string, err error) {
	if keysDir, err = a.dir.MkdirPrivate(datadir.KeysDir); err != nil {
		return "", err
	}
	master, err := secrets.LoadOrCreateKey(filepath.Join(keysDir, datadir.MasterKeyFile))
	if err != nil {
		return "", err
	}
	a.sealer, err = secrets.New(master)
	return keysDir, err
}

// openAudit loads the audit checkpoint key and builds the recorder every
// subsystem writes its records with.
func (a *App) openAudit(keysDir string) (err error) {
	if a.auditSigner, err = audit.LoadOrCreateSigner(keysDir, a.sealer); err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	a.recorder, err = audit.NewRecorder(audit.RecorderOptions{
		Store:     a.store,
		Sealer:    a.sealer,
		SourceKey: a.auditSigner.DeriveKey("source pseudonyms"),
		Request: func(ctx context.Context) audit.RequestInfo {
			return audit.RequestInfo{ID: httpapi.RequestID(ctx), ClientAddr: httpapi.ClientAddr(ctx)}
		},
	})
	return err
}

// mountAudit serves the chain check, the auditors' reading of the log and
// of pseudonyms, and (mounted from here so app.go stays as it is) every
// subject's export of their own data.
func (a *App) mountAudit() {
	for _, rt := range []httpapi.Route{
		{Pattern: "GET /api/v1/audit/verify", Access: httpapi.AdminOrAuditor, Handler: a.verifyAudit},
		{Pattern: "GET /api/v1/audit/records", Access: httpapi.AuditorOnly, Handler: a.auditRecords},
		{Pattern: "GET /api/v1/audit/pseudonyms/{pseudonym}", Access: httpapi.AuditorOnly, Handler: a.resolvePseudonym},
	} {
		a.api.Handle(rt)
	}
	a.mountExport()
}

// Recorder is the audit recorder every subsystem writes its records with.
func (a *App) Recorder() *audit.Recorder { return a.recorder }

// httpAuditor is the audit step of the HTTP middleware chain.
type httpAuditor struct{ rec *audit.Recorder }

// AuditRequest refuses every request while the audit log cannot take
// records.
func (h httpAuditor) AuditRequest(*http.Request, principal.Principal, *httpapi.Route) error {
	return h.rec.Available()
}

// AuditRefusal records a refused authentication ("authn.refuse") or
// authorisation ("access.deny"), naming the route and the refusal's code.
func (h httpAuditor) AuditRefusal(r *http.Request, p principal.Principal, rt *httpapi.Route, refusal error) error {
	e := audit.Entry{
		Action:  "access.deny",
		Target:  audit.Target{Kind: "route", ID: rt.Pattern},
		Outcome: audit.OutcomeDenied,
	}
	if p.ID == "" {
		e.Action = "authn.refuse"
	}
	var he *httpapi.HTTPError
	if errors.As(refusal, &he) {
		e.Reason = he.Code
	}
	return h.rec.Submit(r.Context(), e)
}

// AuditVerification is the answer of GET /api/v1/audit/verify.
type AuditVerification struct {
	Intact            bool   `json:"intact"`
	Records           uint64 `json:"records"`
	LastSeq           uint64 `json:"last_seq"`
	Checkpoints       int    `json:"checkpoints"`
	LastCheckpointSeq uint64 `json:"last_checkpoint_seq"`
	Unsigned          uint64 `json:"unsigned_records"`
	FirstBadRecord    uint64 `json:"first_bad_record,omitempty"`
	Problem           string `json:"problem,omitempty"`
	KeyFingerprint    string `json:"key_fingerprint"`
}

// verifyAudit checks the whole chain and every checkpoint (admin only).
func (a *App) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	pub := a.auditSigner.Public()
	rep, err := audit.Verify(r.Context(), a.store, pub)
	out := AuditVerification{Intact: err == nil, Records: rep.Records, LastSeq: rep.LastSeq, Checkpoints: rep.Checkpoints,
		LastCheckpointSeq: rep.LastCheckpointSeq, Unsigned: rep.Unsigned, KeyFingerprint: audit.Fingerprint(pub)}
	var bad *audit.VerifyError
	switch {
	case errors.As(err, &bad):
		out.FirstBadRecord, out.Problem = bad.Seq, bad.Reason
	case err != nil:
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// shutdownCheckpoint signs the chain head as the server stops, so records
// written since the last checkpoint are covered too.
func (a *App) shutdownCheckpoint() {
	if a.auditSigner == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.store.InTx(ctx, func(tx store.Tx) error {
		_, err := audit.Checkpoint(ctx, tx, a.auditSigner, "shutdown", time.Now())
		return err
	})
	if err != nil {
		a.log.Error("audit shutdown checkpoint", slog.Any("error", err))
	}
}

// Limits of GET /api/v1/audit/records.
const (
	defaultRecordLimit = 1000
	maxRecordLimit     = 10_000
	// recordPage is how many records one transaction reads, so a large
	// export does not hold the store's write lock for long.
	recordPage = 1000
)

// AuditHeadHeader names the response header of GET /api/v1/audit/records
// that holds the seq of the newest record when the request was answered
// (its own audit.export record or later), so a follower can start at the
// current end: rampart audit tail.
const AuditHeadHeader = "Rampart-Audit-Head-Seq"

// recordLine is one audit record in an export: a JSON object with the
// record's fields, its place in the chain and its hashes in hex. The time
// is in UTC with nine fractional digits, as in the canonical encoding the
// hash covers, so an export can be checked against the chain.
//
// TODO(issue 6): audit.MarshalRecordLine (on another branch) writes this
// same format; use it here and in export.go once it is merged.
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

func recordLineOf(r store.AuditRecord) recordLine {
	return recordLine{
		Type: "record", Seq: r.Seq, Time: r.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		Actor: r.Actor, ActorKind: r.ActorKind, Source: r.Source, Action: r.Action,
		TargetKind: r.TargetKind, TargetDomain: r.TargetDomain, TargetID: r.TargetID,
		Outcome: r.Outcome, Reason: r.Reason, RequestID: r.RequestID,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	}
}

// parseRecordQuery reads after_seq, since and limit; anything else, or a
// parameter given twice, is refused with a message that says what is
// wrong.
func parseRecordQuery(v url.Values) (store.AuditQuery, error) {
	q := store.AuditQuery{Limit: defaultRecordLimit}
	bad := func(format string, args ...any) error {
		return httpapi.Error(http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...), nil)
	}
	for name, values := range v {
		if len(values) > 1 {
			return q, bad("query parameter %s is given %d times; give it once", strconv.Quote(name), len(values))
		}
		val := values[0]
		switch name {
		case "after_seq":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return q, bad("after_seq must be a whole number of 0 or more (the seq of the last record already read)")
			}
			q.AfterSeq = n
		case "since":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return q, bad("since must be an RFC 3339 time such as 2025-01-31T23:59:00Z")
			}
			q.Since = t
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxRecordLimit {
				return q, bad("limit must be a whole number from 1 to %d", maxRecordLimit)
			}
			q.Limit = n
		default:
			return q, bad("unknown query parameter %s: the parameters are after_seq, since and limit", strconv.Quote(name))
		}
	}
	return q, nil
}

// queryReason describes q in an audit.export record.
func queryReason(q store.AuditQuery) string {
	parts := []string{"after_seq=" + strconv.FormatUint(q.AfterSeq, 10)}
	if !q.Since.IsZero() {
		parts = append(parts, "since="+q.Since.UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(append(parts, "limit="+strconv.Itoa(q.Limit)), " ")
}

// auditRecords streams the records after after_seq (and at or after
// since), oldest first, up to limit, as JSON lines. The read is recorded
// before anything is read: no record leaves unrecorded. A client has read
// everything when it gets fewer lines than its limit.
func (a *App) auditRecords(w http.ResponseWriter, r *http.Request) error {
	q, err := parseRecordQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.recorder.Write(ctx, audit.Entry{
		Action: "audit.export", Target: audit.Target{Kind: "audit-log"}, Reason: queryReason(q),
	}); err != nil {
		return err
	}
	// Everything is read before the first byte is sent, so a failure is
	// an error response, not a silently short stream.
	recs, head, err := a.findRecords(ctx, q)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set(AuditHeadHeader, strconv.FormatUint(head, 10))
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, rec := range recs {
		if err := enc.Encode(recordLineOf(rec)); err != nil {
			return nil // the client went away; the status is sent already
		}
	}
	return nil
}

// findRecords returns the records q selects, reading recordPage at a time,
// and the seq of the newest record at the first read.
func (a *App) findRecords(ctx context.Context, q store.AuditQuery) (recs []store.AuditRecord, head uint64, err error) {
	limit := q.Limit
	recs = []store.AuditRecord{}
	for first := true; len(recs) < limit; first = false {
		q.Limit = min(recordPage, limit-len(recs))
		var page []store.AuditRecord
		err := a.store.InTx(ctx, func(tx store.Tx) error {
			if first {
				h, ok, err := tx.Audit().AuditHead(ctx)
				if err != nil {
					return err
				}
				if ok {
					head = h.Seq
				}
			}
			var err error
			page, err = tx.Audit().FindAuditRecords(ctx, q)
			return err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read audit records: %w", err)
		}
		recs = append(recs, page...)
		if len(page) < q.Limit {
			break
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
	return recs, head, nil
}

// ResolvedPseudonym answers GET /api/v1/audit/pseudonyms/{pseudonym}.
type ResolvedPseudonym struct {
	Pseudonym string `json:"pseudonym"`
	SubjectID string `json:"subject_id"`
	// Kind is "user", "service-account" or "federated" (a user of a
	// trusted identity provider: its id holds ':').
	Kind string `json:"kind"`
	// Name is the account's or service account's name while it exists.
	Name string `json:"name,omitempty"`
}

// errUnknownPseudonym is the one answer for a pseudonym that never
// existed and for one whose subject was erased: they must not be told
// apart.
var errUnknownPseudonym = httpapi.Error(http.StatusNotFound, "not_found",
	"pseudonym not found (never existed, or its subject was erased)", nil)

// resolvePseudonym tells an auditor whom a pseudonym stands for. The
// lookup and its record ("pseudonym.resolve", with its outcome) commit
// together before the answer: no name leaves unrecorded.
func (a *App) resolvePseudonym(w http.ResponseWriter, r *http.Request) error {
	ps := r.PathValue("pseudonym")
	e := audit.Entry{Action: "pseudonym.resolve", Target: audit.Target{Kind: "pseudonym"}}
	if audit.IsPseudonym(ps) {
		e.Target.ID = ps
	} else {
		e.Reason = "malformed pseudonym" // the text itself is the client's and is not recorded
	}
	ctx := r.Context()
	var out *ResolvedPseudonym
	err := a.store.InTx(ctx, func(tx store.Tx) error {
		out = nil
		e.Outcome = audit.OutcomeFailure
		subject, err := a.recorder.Resolve(ctx, tx, ps)
		switch {
		case errors.Is(err, audit.ErrUnknownPseudonym):
		case err != nil:
			return err
		default:
			kind, name, err := describeSubject(ctx, tx, subject)
			if err != nil {
				return err
			}
			out = &ResolvedPseudonym{Pseudonym: ps, SubjectID: subject, Kind: kind, Name: name}
			e.Outcome = audit.OutcomeSuccess
		}
		return a.recorder.Record(ctx, tx, e)
	})
	if err != nil {
		return err
	}
	if out == nil {
		return errUnknownPseudonym
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// Subject kinds in pseudonym answers and exports.
const (
	subjectUser           = "user"
	subjectServiceAccount = "service-account"
	subjectFederated      = "federated"
)

// isFederated reports whether id is a federated user's ("<issuer>:<sub>");
// local account and service account ids never hold ':'.
func isFederated(id string) bool { return strings.Contains(id, ":") }

// describeSubject returns the kind of subject id and, for an account or
// service account that still exists, its name.
func describeSubject(ctx context.Context, tx store.Tx, id string) (kind, name string, err error) {
	if isFederated(id) {
		// Rampart stores no name for federated users.
		return subjectFederated, "", nil
	}
	acc, err := tx.Accounts().AccountByID(ctx, id)
	switch {
	case err == nil:
		return subjectUser, acc.Name, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", "", fmt.Errorf("describe subject: %w", err)
	}
	sa, err := tx.ServiceAccounts().ServiceAccountByID(ctx, id)
	switch {
	case err == nil:
		return subjectServiceAccount, sa.Name, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", "", fmt.Errorf("describe subject: %w", err)
	}
	// Deleted, but not erased: the id still says which kind it was.
	if strings.HasPrefix(id, "sa-") {
		return subjectServiceAccount, "", nil
	}
	return subjectUser, "", nil
}
