package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
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

// mountAudit serves the chain check.
func (a *App) mountAudit() {
	a.api.Handle(httpapi.Route{Pattern: "GET /api/v1/audit/verify", Access: httpapi.AdminOrAuditor, Handler: a.verifyAudit})
}

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
