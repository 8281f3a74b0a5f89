package rekey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/pki"
	"github.com/rampart-ml/rampart/internal/rekey"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// server is a running server whose test stops it when it wants to.
type server struct {
	*apptest.Server
	stop func()
}

func config_(dataDir, masterKeyFile string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.MasterKeyFile = masterKeyFile
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP.ShutdownTimeout = 5 * time.Second
	cfg.Identity.HashProcesses = false
	apptest.FastHashing(&cfg)
	// Tokens name their issuer; a restart listens on another port.
	cfg.Identity.Issuer = "https://rampart.test"
	return cfg
}

// start starts a server on dataDir (API only).
func start(t *testing.T, dataDir, masterKeyFile string) *server {
	t.Helper()
	a, err := startApp(dataDir, masterKeyFile)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	pool, err := pki.CertPool(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Server: &apptest.Server{App: a, URL: a.URL(), DataDir: dataDir, Client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}}}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		s.Client.CloseIdleConnections()
		cancel()
		<-served
		_ = a.Close()
		waitUnlocked(t, dataDir)
	}
	t.Cleanup(s.stop)
	if f := a.AdminPasswordFile(); f != "" {
		b, err := os.ReadFile(f) // #nosec G304 -- the test's data directory
		if err != nil {
			t.Fatal(err)
		}
		s.AdminPassword = strings.TrimSpace(string(b))
	}
	return s
}

// waitUnlocked waits (bounded) until the data directory's lock is free.
// Closing the server's lock file does not free it while a process forked
// by a parallel test has not yet exec'd (the child shares the descriptor
// until then); the rotation, like a real operator's, needs it free.
func waitUnlocked(t *testing.T, dataDir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := datadir.Open(dataDir)
		if err == nil {
			_ = d.Close()
			return
		}
		if !errors.Is(err, datadir.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("data directory still locked after the server stopped: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startApp(dataDir, masterKeyFile string) (*app.App, error) {
	return app.New(context.Background(), config_(dataDir, masterKeyFile), slog.New(slog.DiscardHandler), app.WithoutRuntime())
}

const newPassword = "a long and new passphrase 42"

// sealer returns the sealer of the key in file.
func sealer(t *testing.T, file string) *secrets.Sealer {
	t.Helper()
	k, err := secrets.LoadKey(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := secrets.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomSealer(t *testing.T) *secrets.Sealer {
	t.Helper()
	k := make([]byte, secrets.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	s, err := secrets.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealedValue is one stored sealed value and its associated data.
type sealedValue struct {
	name       string
	sealed, ad []byte
}

// sealedValues lists every sealed value of the data directory that the
// rotation must have re-sealed (the test's own list, not rekey's: AD
// built from the owners' functions).
func sealedValues(t *testing.T, dataDir string) []sealedValue {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, datadir.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []sealedValue
	err = st.InTx(ctx, func(tx store.Tx) error {
		accts, err := tx.Accounts().ListAccounts(ctx)
		if err != nil {
			return err
		}
		for _, a := range accts {
			if a.TOTPSecret != nil {
				out = append(out, sealedValue{"totp " + a.Name, a.TOTPSecret, identity.TOTPSecretAD(a.ID)})
			}
			if s, err := tx.Audit().PseudonymSecret(ctx, a.ID); err == nil {
				out = append(out, sealedValue{"pseudonym " + a.Name, s, audit.PseudonymSecretAD()})
			}
		}
		keys, err := tx.SigningKeys().ListSigningKeys(ctx)
		for _, k := range keys {
			out = append(out, sealedValue{"signing key " + k.ID, k.SealedPrivate, signingkeys.SealAD(k.ID)})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := os.ReadFile(filepath.Join(dataDir, datadir.KeysDir, audit.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return append(out, sealedValue{"audit signing key", ak, audit.SigningKeyAD()})
}

// wantSealedUnder checks that every stored secret opens under good and
// none under bad.
func wantSealedUnder(t *testing.T, dataDir string, good, bad *secrets.Sealer) {
	t.Helper()
	vals := sealedValues(t, dataDir)
	kinds := map[string]bool{}
	for _, v := range vals {
		kinds[strings.Fields(v.name)[0]] = true
		if _, err := good.Open(v.sealed, v.ad); err != nil {
			t.Errorf("%s does not open under the new key: %v", v.name, err)
		}
		if _, err := bad.Open(v.sealed, v.ad); err == nil {
			t.Errorf("%s still opens under the old key", v.name)
		}
	}
	for _, k := range []string{"totp", "pseudonym", "signing", "audit"} {
		if !kinds[k] {
			t.Errorf("no %s secret in the data directory: the test set-up is incomplete", k)
		}
	}
}

// blobData is an artefact put in the store before the rotation.
var blobData = []byte("model bytes that must survive the rotation unchanged")

func putBlob(t *testing.T, dataDir string, s *secrets.Sealer) artifact.Blob {
	t.Helper()
	fs, err := artifact.NewFS(filepath.Join(dataDir, datadir.ArtifactsDir), s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.Put(context.Background(), "com.acme", bytes.NewReader(blobData))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readBlob(dataDir string, s *secrets.Sealer, b artifact.Blob) ([]byte, error) {
	fs, err := artifact.NewFS(filepath.Join(dataDir, datadir.ArtifactsDir), s)
	if err != nil {
		return nil, err
	}
	rc, err := fs.Open(context.Background(), "com.acme", b.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// setUp is a data directory as a server leaves it: the admin with a new
// password, a second factor and the auditor role, a signing key, audit
// pseudonyms and one artefact.
type setUp struct {
	dataDir, adminID, totpSecret, oldToken, pseudonym string
	blob                                              artifact.Blob
}

func newSetUp(t *testing.T, dataDir, masterKeyFile string) setUp {
	t.Helper()
	s := start(t, dataDir, masterKeyFile)
	u := setUp{dataDir: dataDir}
	tok := s.Login(t, identity.AdminName, s.AdminPassword)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", tok.AccessToken,
		map[string]string{"current_password": s.AdminPassword, "new_password": newPassword}), http.StatusNoContent)
	tok = s.Login(t, identity.AdminName, newPassword)
	u.adminID = apptest.Decode[struct {
		ID string `json:"id"`
	}](t, s.Do(t, "GET", "/api/v1/me", tok.AccessToken, nil), http.StatusOK).ID
	s.MakeAuditor(t, u.adminID)

	en := apptest.Decode[struct {
		Secret     string `json:"secret"`
		Enrollment string `json:"enrollment"`
	}](t, s.Do(t, "POST", "/api/v1/me/totp", tok.AccessToken, nil), http.StatusOK)
	code, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	apptest.WantStatus(t, s.Do(t, "PUT", "/api/v1/me/totp", tok.AccessToken,
		map[string]string{"enrollment": en.Enrollment, "code": code, "password": newPassword}), http.StatusNoContent)
	u.totpSecret, u.oldToken = en.Secret, tok.AccessToken

	for _, r := range s.AuditRecords(t, store.AuditQuery{}) {
		if r.Action == "totp.enable" || audit.IsPseudonym(r.Actor) && r.ActorKind == audit.ActorUser {
			u.pseudonym = r.Actor
		}
	}
	if u.pseudonym == "" {
		t.Fatal("no record names the admin by pseudonym")
	}
	s.stop()
	key := masterKeyFile
	if key == "" {
		key = filepath.Join(dataDir, datadir.KeysDir, datadir.MasterKeyFile)
	}
	u.blob = putBlob(t, dataDir, sealer(t, key))
	return u
}

// check starts a server on the rotated data directory and checks that
// everything sealed still works.
func (u setUp) check(t *testing.T, masterKeyFile string) {
	t.Helper()
	s := start(t, u.dataDir, masterKeyFile)
	defer s.stop()
	// A login with the second factor (a code of the next step: the
	// enrollment's code is spent).
	code, err := totp.GenerateCode(u.totpSecret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	res := s.Do(t, "POST", "/api/v1/login", "", map[string]string{"username": identity.AdminName, "password": newPassword, "otp": code})
	apptest.WantStatus(t, res, http.StatusOK)
	// A token signed before the rotation still verifies.
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/me", u.oldToken, nil), http.StatusOK)
	v := apptest.Decode[app.AuditVerification](t, s.Do(t, "GET", "/api/v1/audit/verify", u.oldToken, nil), http.StatusOK)
	if !v.Intact {
		t.Errorf("audit chain after the rotation: %+v", v)
	}
	got := apptest.Decode[app.ResolvedPseudonym](t, s.Do(t, "GET", "/api/v1/audit/pseudonyms/"+u.pseudonym, u.oldToken, nil), http.StatusOK)
	if got.SubjectID != u.adminID {
		t.Errorf("pseudonym resolves to %q, want %q", got.SubjectID, u.adminID)
	}
	n := apptest.CountAudit(s.AuditRecords(t, store.AuditQuery{}), func(r store.AuditRecord) bool {
		return r.Action == rekey.Action && r.ActorKind == audit.ActorSystem
	})
	if n == 0 {
		t.Error("no keys.rotate_master record")
	}
}

func TestRotateMasterKey(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	u := newSetUp(t, dataDir, "")
	keyFile := filepath.Join(dataDir, datadir.KeysDir, datadir.MasterKeyFile)
	old := sealer(t, keyFile)
	ctx := context.Background()

	// Refused while a server runs.
	s := start(t, dataDir, "")
	_, err := rekey.Run(ctx, rekey.Options{DataDir: dataDir})
	if !errors.Is(err, datadir.ErrLocked) || !strings.Contains(err.Error(), "server is stopped") {
		t.Errorf("rotation beside a running server: %v, want refused (ErrLocked)", err)
	}
	s.stop()
	wantSealedUnder(t, dataDir, old, randomSealer(t)) // nothing changed

	rep, err := rekey.Run(ctx, rekey.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Installed || rep.Resumed || !rep.AuditKey || rep.Database.Resealed[store.SecretTOTP] != 1 {
		t.Errorf("report = %+v", rep)
	}
	for _, f := range []string{rekey.NewKeyFile, rekey.OldKeyFile} {
		if _, err := os.Lstat(filepath.Join(dataDir, datadir.KeysDir, f)); err == nil {
			t.Errorf("%s left behind", f)
		}
	}
	nu := sealer(t, keyFile)
	wantSealedUnder(t, dataDir, nu, old)
	if b, err := readBlob(dataDir, nu, u.blob); err != nil || !bytes.Equal(b, blobData) {
		t.Errorf("artefact under the new key: %q, %v", b, err)
	}
	if _, err := readBlob(dataDir, old, u.blob); err == nil {
		t.Error("the old key still opens the artefact")
	}
	u.check(t, "")

	// Running it again rotates again, here to a key the operator chose:
	// it is an ordinary command, not a one-off.
	third := bytes.Repeat([]byte{9}, secrets.KeySize)
	thirdFile := filepath.Join(t.TempDir(), "third.key")
	if err := os.WriteFile(thirdFile, third, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rekey.Run(ctx, rekey.Options{DataDir: dataDir, NewKeyFile: thirdFile}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(keyFile); err != nil || !bytes.Equal(got, third) { // #nosec G304 -- the test's data directory
		t.Errorf("installed key is not the one given (%v)", err)
	}
	wantSealedUnder(t, dataDir, sealer(t, keyFile), nu)
	if _, err := rekey.Run(ctx, rekey.Options{DataDir: dataDir, NewKeyFile: thirdFile}); err == nil || !strings.Contains(err.Error(), "current master key") {
		t.Errorf("rotation to the current key: %v, want refused", err)
	}
}

// A rotation stopped after any step (a crash: the steps called directly,
// the lock dropped) leaves a data directory the server refuses to start
// on, and running the rotation again finishes it.
func TestRotateMasterKeyResumes(t *testing.T) {
	t.Parallel()
	template := filepath.Join(t.TempDir(), "data")
	u := newSetUp(t, template, "")
	ctx := context.Background()
	steps := []string{"begin", "database", "audit key", "artifact keys", "install"}
	for n := range steps {
		t.Run("after "+steps[n], func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			if out, err := exec.Command("cp", "-a", template, dataDir).CombinedOutput(); err != nil { // #nosec G204 -- test paths
				t.Fatalf("copy the data directory: %v: %s", err, out)
			}
			keyFile := filepath.Join(dataDir, datadir.KeysDir, datadir.MasterKeyFile)
			old := sealer(t, keyFile)
			r, err := rekey.Begin(rekey.Options{DataDir: dataDir})
			if err != nil {
				t.Fatal(err)
			}
			run := []func() error{
				func() error { return nil },
				func() error { _, err := r.ResealDatabase(ctx); return err },
				func() error { _, err := r.ResealAuditKey(); return err },
				func() error { return r.ResealArtifactKeys(ctx) },
				r.Install,
			}
			for _, f := range run[:n+1] {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if a, err := startApp(dataDir, ""); err == nil || !strings.Contains(err.Error(), "rotate-master") {
				if a != nil {
					_ = a.Close()
				}
				t.Fatalf("start on a half-rotated data directory: %v, want refused", err)
			}
			rep, err := rekey.Run(ctx, rekey.Options{DataDir: dataDir})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Resumed {
				t.Errorf("report = %+v, want resumed", rep)
			}
			wantSealedUnder(t, dataDir, sealer(t, keyFile), old)
			u := u
			u.dataDir = dataDir
			if b, err := readBlob(dataDir, sealer(t, keyFile), u.blob); err != nil || !bytes.Equal(b, blobData) {
				t.Errorf("artefact after the resumed rotation: %q, %v", b, err)
			}
			u.check(t, "")
		})
	}
}

// With the operator's key the new key goes only to --new-key-file, and
// the server starts with that file once the operator uses it.
func TestRotateOperatorKey(t *testing.T) {
	t.Parallel()
	secretsDir := t.TempDir()
	cur := filepath.Join(secretsDir, "master.key")
	if err := os.WriteFile(cur, bytes.Repeat([]byte{7}, secrets.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	u := newSetUp(t, dataDir, cur)
	ctx := context.Background()
	next := filepath.Join(secretsDir, "next.key")

	for _, tc := range []struct {
		name string
		o    rekey.Options
		want string
	}{
		{"no new key file", rekey.Options{DataDir: dataDir, MasterKeyFile: cur}, "--new-key-file is required"},
		{"the same key", rekey.Options{DataDir: dataDir, MasterKeyFile: cur, NewKeyFile: cur}, "current master key"},
		{"not a data directory", rekey.Options{DataDir: t.TempDir(), MasterKeyFile: cur, NewKeyFile: next}, "not a Rampart data directory"},
	} {
		if _, err := rekey.Run(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A crash after the database: the server refuses to start until the
	// same command is run again.
	opts := rekey.Options{DataDir: dataDir, MasterKeyFile: cur, NewKeyFile: next}
	r, err := rekey.Begin(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ResealDatabase(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{cur, next} {
		if a, err := startApp(dataDir, key); err == nil || !strings.Contains(err.Error(), "rotate-master") {
			if a != nil {
				_ = a.Close()
			}
			t.Fatalf("start with %s on a half-rotated data directory: %v, want refused", filepath.Base(key), err)
		}
	}
	rep, err := rekey.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Installed || !rep.Resumed {
		t.Errorf("report = %+v: nothing is installed for the operator", rep)
	}
	fi, err := os.Stat(next)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v, %v", fi, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, datadir.KeysDir))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), datadir.MasterKeyFile) || e.Name() == rekey.PendingFile {
			t.Errorf("the data directory got %s", e.Name())
		}
	}
	wantSealedUnder(t, dataDir, sealer(t, next), sealer(t, cur))
	// The same command again changes nothing and succeeds.
	if rep, err := rekey.Run(ctx, opts); err != nil || len(rep.Database.Resealed) != 0 {
		t.Errorf("second run: %+v, %v", rep, err)
	}
	if a, err := startApp(dataDir, cur); err == nil {
		_ = a.Close()
		t.Error("the server started with the old key")
	}
	u.check(t, next)
}

// A value sealed under neither key stops the rotation with its name, and
// the database transaction changes nothing.
func TestRotateRefusesForeignValue(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	s := start(t, dataDir, "")
	s.Login(t, identity.AdminName, s.AdminPassword) // creates the admin's pseudonym secret
	var adminID string
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		a, err := tx.Accounts().AccountByName(ctx, identity.AdminName)
		if err != nil {
			return err
		}
		adminID = a.ID
		// A TOTP secret sealed under some other key.
		if a.TOTPSecret, err = randomSealer(t).Seal([]byte("JBSWY3DPEHPK3PXP"), identity.TOTPSecretAD(a.ID)); err != nil {
			return err
		}
		return tx.Accounts().UpdateAccount(ctx, a)
	})
	s.stop()
	keyFile := filepath.Join(dataDir, datadir.KeysDir, datadir.MasterKeyFile)
	keyBefore, err := os.ReadFile(keyFile) // #nosec G304 -- the test's data directory
	if err != nil {
		t.Fatal(err)
	}
	before := sealedValues(t, dataDir)

	_, err = rekey.Run(context.Background(), rekey.Options{DataDir: dataDir})
	if !errors.Is(err, rekey.ErrNeitherKey) || !strings.Contains(err.Error(), adminID) {
		t.Fatalf("rotation over a foreign value: %v, want ErrNeitherKey naming %s", err, adminID)
	}
	if d := cmpValues(before, sealedValues(t, dataDir)); d != "" {
		t.Errorf("the failed rotation changed stored values: %s", d)
	}
	// The data directory is left for the operator to repair, and the
	// server will not start half-rotated.
	if _, err := os.Lstat(filepath.Join(dataDir, datadir.KeysDir, rekey.NewKeyFile)); err != nil {
		t.Errorf("pending new key: %v", err)
	}
	if keyAfter, err := os.ReadFile(keyFile); err != nil || !bytes.Equal(keyBefore, keyAfter) { // #nosec G304 -- the test's data directory
		t.Errorf("master.key changed by a failed rotation (%v)", err)
	}
}

func cmpValues(a, b []sealedValue) string {
	if len(a) != len(b) {
		return "a different number of values"
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].sealed, b[i].sealed) {
			return a[i].name + " changed"
		}
	}
	return ""
}
