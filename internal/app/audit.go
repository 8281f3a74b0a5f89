package app

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/rekey"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
	"github.com/rampart-ml/rampart/internal/version"
)

// openKeys loads (or creates) the master key under DATA_DIR/keys and the
// sealer every stored secret goes through.
func (a *App) openKeys() (keysDir string, err error) {
	if keysDir, err = a.dir.MkdirPrivate(datadir.KeysDir); err != nil {
		return "", err
	}
	// Half the secrets may be sealed under a key not yet installed.
	if err := rekey.Interrupted(keysDir); err != nil {
		return "", err
	}
	master, err := a.masterKey(keysDir)
	if err != nil {
		return "", err
	}
	a.sealer, err = secrets.New(master)
	return keysDir, err
}

// masterKey is the operator's master key (--master-key-file), or the data
// dir's own, created on first start. A data dir whose own key differs
// from the operator's is refused: its secrets are sealed under the other
// key, and starting would lose them.
func (a *App) masterKey(keysDir string) ([]byte, error) {
	own := filepath.Join(keysDir, datadir.MasterKeyFile)
	if a.cfg.MasterKeyFile == "" {
		return secrets.LoadOrCreateKey(own)
	}
	key, err := secrets.LoadKey(a.cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master-key-file: %w", err)
	}
	switch existing, err := secrets.LoadKey(own); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case subtle.ConstantTimeCompare(existing, key) != 1:
		return nil, fmt.Errorf("master-key-file: %s holds a different master key; the data directory's secrets are sealed under that one. Start with it, or without --master-key-file", own)
	default:
		a.log.Warn("the data directory still holds a copy of the master key given by --master-key-file; delete it so a copy of the data directory does not carry the key", slog.String("path", own))
	}
	return key, nil
}

// openAudit loads the audit checkpoint key and builds the recorder every
// subsystem writes its records with, and the follower that copies the
// log (--audit-file, --audit-stdout) and signs its checkpoints. Both start
// in startAudit, once the server is built.
func (a *App) openAudit(keysDir string, reg prometheus.Registerer) (err error) {
	ac := a.cfg.Audit
	if a.auditSigner, err = audit.LoadOrCreateSigner(keysDir, a.sealer); err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	policy, err := audit.ParseQueuePolicy(ac.QueueFull)
	if err != nil {
		return err
	}
	if policy == audit.QueueDrop {
		a.log.Warn("INSECURE: --audit-queue-full=drop is set; when the audit queue is full, denials and sampled inference calls go unrecorded")
	}
	// The follower reads everything the writer appends; a read-only handle
	// keeps its reads from queueing behind writes.
	if a.auditReader, err = sqlite.OpenReadOnly(context.Background(), a.dir.Path(datadir.DatabaseFile)); err != nil {
		return fmt.Errorf("audit reader: %w", err)
	}
	fo := audit.FollowerOptions{
		Store: a.store, Reader: a.auditReader, Signer: a.auditSigner, File: ac.File,
		CheckpointRecords: uint64(ac.CheckpointRecords), CheckpointInterval: ac.CheckpointInterval, // #nosec G115 -- validated positive
		Log: a.log,
	}
	if ac.Stdout {
		fo.Stream = os.Stdout
	}
	if a.follower, err = audit.NewFollower(context.Background(), fo); err != nil {
		return fmt.Errorf("audit copy: %w", err)
	}
	a.recorder, err = audit.NewRecorder(audit.RecorderOptions{
		Store:     a.store,
		Sealer:    a.sealer,
		SourceKey: a.auditSigner.DeriveKey("source pseudonyms"),
		Request: func(ctx context.Context) audit.RequestInfo {
			return audit.RequestInfo{ID: httpapi.RequestID(ctx), ClientAddr: httpapi.ClientAddr(ctx)}
		},
		QueueSize: ac.QueueSize,
		QueueFull: policy,
		OnCommit:  a.follower.Notify,
		Log:       a.log,
	})
	if err != nil {
		return err
	}
	registerAuditMetrics(reg, a.recorder)
	// Allowed inference calls are recorded at this rate, counted exactly
	// per service; model services (the inference issue) record their calls
	// through it.
	a.sampler, err = audit.NewSampler(ac.InferenceSampleRate, nil)
	return err
}

// InferenceSampler decides which allowed inference calls are recorded
// (audit.Recorder.RecordAllowedInference).
func (a *App) InferenceSampler() *audit.Sampler { return a.sampler }

// registerAuditMetrics exports the writer's counters.
func registerAuditMetrics(reg prometheus.Registerer, rec *audit.Recorder) {
	counter := func(name, help string, v func(audit.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(rec.Stats())) })
	}
	reg.MustRegister(
		counter("rampart_audit_records_written_total", "Audit records committed by the writer.", func(s audit.Stats) uint64 { return s.Written }),
		counter("rampart_audit_records_dropped_total", "Audit records dropped because the queue was full (--audit-queue-full=drop).", func(s audit.Stats) uint64 { return s.Dropped }),
		counter("rampart_audit_records_lost_total", "Queued audit records the store refused.", func(s audit.Stats) uint64 { return s.Lost }),
		counter("rampart_audit_refusals_suppressed_total", "Refusals of unauthenticated requests counted rather than recorded one by one (per-source rate, queue room).", func(s audit.Stats) uint64 { return s.Suppressed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_audit_queue_pending", Help: "Audit records queued, not yet committed."},
			func() float64 { return float64(rec.Stats().Pending) }),
	)
}

// serverActor is the audit actor of the server's own actions.
var serverActor = &audit.Actor{ID: "server", Kind: audit.ActorSystem}

// startAudit starts the audit writer, the follower and, with a retention
// period, the daily pruning, and records the start with the settings that
// weaken security: a server that cannot record does not start.
func (a *App) startAudit() error {
	a.recorder.Start()
	a.follower.Start()
	reason := fmt.Sprintf("version=%s insecure_http=%t weak_password_hashing=%t audit_queue_full=%s audit_retention=%s",
		version.Version, a.cfg.TLS.InsecureHTTP, a.cfg.Identity.AllowWeakHashing, a.cfg.Audit.QueueFull, a.cfg.Audit.Retention)
	if err := a.recorder.Write(context.Background(), audit.Entry{Action: "server.start", Reason: reason, Actor: serverActor}); err != nil {
		return fmt.Errorf("audit: record the start: %w", err)
	}
	if a.cfg.Audit.Retention > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopPruning = cancel
		a.pruned = make(chan struct{})
		go a.pruneDaily(ctx)
	}
	return nil
}

// pruneDaily prunes records older than the retention period at start and
// then every day, until ctx is cancelled.
func (a *App) pruneDaily(ctx context.Context) {
	defer close(a.pruned)
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		rep, err := audit.Prune(ctx, a.store, a.auditSigner, now.Add(-a.cfg.Audit.Retention), now)
		switch {
		case err != nil:
			a.log.Error("audit prune", slog.Any("error", err))
		case rep.Removed > 0:
			a.log.Info("audit records pruned", slog.Uint64("through_seq", rep.Through), slog.Int64("removed", rep.Removed))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// closeAudit writes what is queued, signs the shutdown checkpoint (so
// every record is covered) and closes the copies. It runs once, after the
// HTTP server has stopped.
func (a *App) closeAudit() {
	a.closeAuditOnce.Do(func() {
		if a.stopPruning != nil {
			a.stopPruning()
			<-a.pruned
		}
		// Each step gets its own time: one that runs out must not leave
		// the next (the shutdown checkpoint above all) without any.
		step := func(what string, f func(ctx context.Context) error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := f(ctx); err != nil {
				a.log.Error(what, slog.Any("error", err))
			}
		}
		if a.recorder != nil {
			if a.sampler != nil {
				step("audit: inference summary", func(ctx context.Context) error { return a.recorder.RecordInferenceSummary(ctx, a.sampler) })
			}
			step("audit: record the stop", func(ctx context.Context) error {
				return a.recorder.Write(ctx, audit.Entry{Action: "server.stop", Actor: serverActor})
			})
			step("audit writer: close", a.recorder.Close)
		}
		if a.follower != nil {
			step("audit copy and shutdown checkpoint", a.follower.Close)
		}
		if a.auditReader != nil {
			_ = a.auditReader.Close()
		}
	})
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
type httpAuditor struct {
	rec *audit.Recorder
	// anonymous limits the refusals of unauthenticated requests recorded
	// one by one, per source address; the rest are counted.
	anonymous *bruteforce.SourceLimiter
}

func newHTTPAuditor(rec *audit.Recorder) (httpAuditor, error) {
	l, err := bruteforce.NewSourceLimiter(bruteforce.SourcePolicy{Burst: 10, Refill: time.Second, MaxSources: 100_000})
	return httpAuditor{rec: rec, anonymous: l}, err
}

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
	var he *httpapi.HTTPError
	if errors.As(refusal, &he) {
		e.Reason = he.Code
	}
	if p.ID != "" {
		return h.rec.Submit(r.Context(), e)
	}
	// Anyone can send bad tokens: those refusals are recorded while the
	// source stays under its rate and the queue has room, and counted
	// otherwise; the refusal stands either way.
	e.Action = "authn.refuse"
	if ok, _ := h.anonymous.Allow(httpapi.PeerAddr(r), time.Now()); !ok {
		h.rec.Suppress()
		return nil
	}
	h.rec.SubmitIfRoom(r.Context(), e)
	return nil
}

// AuditVerification is the answer of GET /api/v1/audit/verify.
type AuditVerification struct {
	Intact            bool   `json:"intact"`
	Records           uint64 `json:"records"`
	LastSeq           uint64 `json:"last_seq"`
	Checkpoints       int    `json:"checkpoints"`
	LastCheckpointSeq uint64 `json:"last_checkpoint_seq"`
	Unsigned          uint64 `json:"unsigned_records"`
	PrunedThrough     uint64 `json:"pruned_through,omitempty"`
	FirstBadRecord    uint64 `json:"first_bad_record,omitempty"`
	Problem           string `json:"problem,omitempty"`
	KeyFingerprint    string `json:"key_fingerprint"`
}

// verifyAudit checks the whole chain and every checkpoint (admin only).
func (a *App) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	pub := a.auditSigner.Public()
	rep, err := audit.Verify(r.Context(), a.auditReader, pub) // read-only: never holds up writers
	out := AuditVerification{Intact: err == nil, Records: rep.Records, LastSeq: rep.LastSeq, Checkpoints: rep.Checkpoints,
		LastCheckpointSeq: rep.LastCheckpointSeq, Unsigned: rep.Unsigned, PrunedThrough: rep.PrunedThrough, KeyFingerprint: audit.Fingerprint(pub)}
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

// recordLine is one audit record in an export: the line the audit copies
// use (audit.MarshalRecordLine), as a JSON value.
func recordLine(r store.AuditRecord) json.RawMessage {
	return bytes.TrimSuffix(audit.MarshalRecordLine(r), []byte("\n"))
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
// since), oldest first, up to limit, as JSON lines. A read is recorded
// before any record is sent, unless it returns nothing but the reader's
// own earlier reads: then it shows only what the reader already knows, and
// recording it would make a tail polling at the end add a record per poll.
// A client has read everything when it gets fewer lines than its limit.
func (a *App) auditRecords(w http.ResponseWriter, r *http.Request) error {
	q, err := parseRecordQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	// Everything is read before the first byte is sent, so a failure is
	// an error response, not a silently short stream.
	recs, head, err := a.findRecords(ctx, q)
	if err != nil {
		return err
	}
	news, err := a.newToReader(ctx, recs)
	if err != nil {
		return err
	}
	if news {
		if err := a.recorder.Write(ctx, audit.Entry{
			Action: "audit.export", Target: audit.Target{Kind: "audit-log"}, Reason: queryReason(q),
		}); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set(AuditHeadHeader, strconv.FormatUint(head, 10))
	w.WriteHeader(http.StatusOK)
	for _, rec := range recs {
		if _, err := w.Write(audit.MarshalRecordLine(rec)); err != nil {
			return nil // the client went away; the status is sent already
		}
	}
	return nil
}

// newToReader reports whether recs hold anything but the caller's own
// audit.export records.
func (a *App) newToReader(ctx context.Context, recs []store.AuditRecord) (bool, error) {
	if len(recs) == 0 {
		return false, nil
	}
	p, _ := principal.FromContext(ctx)
	var mine string
	err := a.store.InTx(ctx, func(tx store.Tx) (err error) {
		mine, err = a.recorder.PseudonymOf(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if r.Action != "audit.export" || r.Actor != mine {
			return true, nil
		}
	}
	return false, nil
}

// findRecords returns the records q selects, reading recordPage at a time,
// and the seq of the newest record at the first read.
func (a *App) findRecords(ctx context.Context, q store.AuditQuery) (recs []store.AuditRecord, head uint64, err error) {
	limit := q.Limit
	recs = []store.AuditRecord{}
	for first := true; len(recs) < limit; first = false {
		q.Limit = min(recordPage, limit-len(recs))
		var page []store.AuditRecord
		err := a.auditReader.InTx(ctx, func(tx store.Tx) error {
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
