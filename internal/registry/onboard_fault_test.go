package registry_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/store"
)

// faultyStore is the server's artifact store with faults on demand: a
// full disk for some contents, a pause after storing another.
type faultyStore struct {
	artifact.Store
	mu     sync.Mutex
	full   map[string]bool // digests whose Put fails with ENOSPC
	pause  string          // the next Put of this digest pauses once stored
	paused chan struct{}   // closed when it pauses
	resume chan struct{}   // closed to let it go on
}

func (f *faultyStore) Put(ctx context.Context, domain string, r io.Reader) (artifact.Blob, error) {
	return f.fault(ctx, domain, func() (artifact.Blob, error) { return f.Store.Put(ctx, domain, r) })
}

// Stage: onboarding stages its files and commits them one by one; each
// Commit gets the same faults as a Put.
func (f *faultyStore) Stage(ctx context.Context, domain string) (artifact.Pending, error) {
	p, err := f.Store.Stage(ctx, domain)
	if err != nil {
		return nil, err
	}
	return &faultyPending{Pending: p, f: f, domain: domain}, nil
}

type faultyPending struct {
	artifact.Pending
	f      *faultyStore
	domain string
}

func (p *faultyPending) Commit(ctx context.Context, name string) (artifact.Blob, error) {
	return p.f.fault(ctx, p.domain, func() (artifact.Blob, error) { return p.Pending.Commit(ctx, name) })
}

// fault stores a blob with put, then fails (full) or pauses as set up.
func (f *faultyStore) fault(ctx context.Context, domain string, put func() (artifact.Blob, error)) (artifact.Blob, error) {
	b, err := put()
	if err != nil {
		return b, err
	}
	f.mu.Lock()
	full, pause := f.full[b.Digest], f.pause == b.Digest
	if pause {
		f.pause = ""
	}
	f.mu.Unlock()
	if full {
		// A real full disk leaves nothing visible; only used for content
		// no other upload stores.
		_ = f.Store.Delete(ctx, domain, b.Digest)
		return artifact.Blob{}, &os.PathError{Op: "write", Path: "blob", Err: syscall.ENOSPC}
	}
	if pause {
		close(f.paused)
		<-f.resume
	}
	return b, nil
}

func startFaulty(t *testing.T) (*apptest.Server, string, *faultyStore) {
	t.Helper()
	fs := &faultyStore{full: map[string]bool{}, paused: make(chan struct{}), resume: make(chan struct{})}
	s := apptest.StartWith(t, []app.Option{app.WithArtifactStore(func(inner artifact.Store) artifact.Store {
		fs.Store = inner
		return fs
	})}, apptest.FastHashing)
	t.Cleanup(s.Client.CloseIdleConnections)
	tok := s.Login(t, "admin", s.AdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok,
		map[string]string{"current_password": s.AdminPassword, "new_password": adminPassword}), http.StatusNoContent)
	return s, s.Login(t, "admin", adminPassword).AccessToken, fs
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkNoOrphans fails if the artifact store holds a blob no version
// references, or a staging area holds anything.
func checkNoOrphans(t *testing.T, s *apptest.Server, versions ...registry.ModelVersion) {
	t.Helper()
	var want []string
	for _, v := range versions {
		for _, f := range v.Files {
			want = append(want, f.Digest)
		}
	}
	root := filepath.Join(s.DataDir, datadir.ArtifactsDir, "blobs")
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !slices.Contains(want, d.Name()) {
			t.Errorf("orphan blob %s", d.Name())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Uploads are staged in the artifact store's tmp/ (zips spooled in
	// the staging directory): both must be empty.
	for _, d := range []string{filepath.Join(s.DataDir, datadir.StagingDir), filepath.Join(s.DataDir, datadir.ArtifactsDir, "tmp")} {
		left, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%s holds %d entries", d, len(left))
		}
	}
}

// The blob race: version b has stored a blob (README.md) that version a
// shares, and not committed yet, when a fails for a full disk and cleans
// up. a's cleanup must not delete the blob b is about to commit; a's own
// blobs must still go once b is done. The pause makes the interleaving
// certain: without blobRefs, b commits a version whose README.md blob is
// gone, and loading it fails.
func TestOnboardBlobRaceAndFullDisk(t *testing.T) {
	t.Parallel()
	s, admin, faulty := startFaulty(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	a := modelDir(t, key, map[string]string{"fail.txt": "no room left for this\n"})
	b := modelDir(t, key, map[string]string{"zz-b.txt": "only in b\n"})
	faulty.mu.Lock()
	faulty.pause = digestOf(b["README.md"])
	faulty.full[digestOf(a["fail.txt"])] = true
	faulty.mu.Unlock()

	bDone := make(chan apptest.Response, 1)
	go func() {
		bDone <- upload(t, s, admin, "com.acme.cls", "b", tarOf(t, b))
	}()
	select {
	case <-faulty.paused:
	case r := <-bDone:
		t.Fatalf("upload b ended before pausing: %d %s", r.StatusCode, r.Body)
	}
	msg := apptest.WantError(t, upload(t, s, admin, "com.acme.cls", "a", tarOf(t, a)), http.StatusInsufficientStorage, "insufficient_storage")
	if msg == "" {
		t.Error("507 without a message")
	}
	close(faulty.resume)
	vb := apptest.Decode[registry.ModelVersion](t, <-bDone, http.StatusCreated)

	if _, err := s.App.ModelLoader().Materialize(t.Context(), "com.acme.cls", "b", filepath.Join(t.TempDir(), "b")); err != nil {
		t.Errorf("load b after a's failed upload: %v", err)
	}
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/models/com.acme.cls/versions/a", admin, nil), http.StatusNotFound)
	checkNoOrphans(t, s, vb)
	n := apptest.CountAudit(s.AuditRecords(t, store.AuditQuery{}), func(r store.AuditRecord) bool {
		return r.Action == registry.ActionModelOnboard && r.TargetID == "com.acme.cls@a" && r.Outcome == "success"
	})
	if n != 0 {
		t.Errorf("%d success records for the failed upload", n)
	}
}

// Two uploads of one version at once: one wins, the other gets 409, and
// the loser leaves nothing behind.
func TestOnboardConcurrentSameVersion(t *testing.T) {
	t.Parallel()
	s, admin, _ := startFaulty(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	// Different content (each its own signature and extra file), so the
	// loser's blobs are its own and must be dropped.
	bodies := [][]byte{
		tarOf(t, modelDir(t, key, map[string]string{"one.txt": "first\n"})),
		tarOf(t, modelDir(t, key, map[string]string{"two.txt": "second\n"})),
	}
	res := make([]apptest.Response, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() { res[i] = upload(t, s, admin, "com.acme.cls", "1.0", body) })
	}
	wg.Wait()
	codes := []int{res[0].StatusCode, res[1].StatusCode}
	slices.Sort(codes)
	if !slices.Equal(codes, []int{http.StatusCreated, http.StatusConflict}) {
		t.Fatalf("statuses %v, want one 201 and one 409 (%s / %s)", codes, res[0].Body, res[1].Body)
	}
	winner := res[0]
	if winner.StatusCode != http.StatusCreated {
		winner = res[1]
	}
	checkNoOrphans(t, s, apptest.Decode[registry.ModelVersion](t, winner, http.StatusCreated))
}

// No version without its record: while the audit log refuses records an
// upload answers 503 audit_unavailable and leaves nothing (no row, no
// blob, an empty staging directory).
func TestOnboardAuditFailure(t *testing.T) {
	t.Parallel()
	s, admin, _ := startFaulty(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)
	key := signingKey(t)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/signer-keys", admin,
		map[string]string{"domain": "com.acme", "public_key": publicPEM(t, key.Public())}), http.StatusCreated)
	// A second connection to the server's database adds a trigger that
	// refuses every audit record (SQLite in WAL mode allows it).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, datadir.DatabaseFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'test: audit log refuses records'); END`); err != nil {
		t.Fatal(err)
	}
	apptest.WantError(t, upload(t, s, admin, "com.acme.cls", "1.0", tarOf(t, modelDir(t, key, nil))), http.StatusServiceUnavailable, "audit_unavailable")
	if _, err := db.ExecContext(t.Context(), `DROP TRIGGER test_refuse_audit`); err != nil {
		t.Fatal(err)
	}
	// The API may answer 503 for a while after the audit log recovers, so
	// look at the database itself.
	var rows int
	if err := db.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM models) + (SELECT count(*) FROM model_versions)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d model rows after a refused record", rows)
	}
	checkNoOrphans(t, s)
}
