package main

// End-to-end tests of the audit log and privacy rules on the real binary:
// a workload of logins, account and access changes, refusals and an
// erasure; then its logs and audit copies are searched for personal data,
// and its audit log is mutated record by record.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

const (
	privacyAdminPassword = "quiet-Meadow-anchor-5517-drift"
	privacyUser          = "zelda-privacy"
	privacyEmail         = "zelda.privacy@example.org"
	privacyUserPassword  = "amber-Falcon-ledger-2290-tide"
	privacyWrongPassword = "wrong-Horse-battery-77-staple"
	privacyGhost         = "ghost-user-xyz"
	privacyBot           = "zelda-bot"
)

// fastHashingFlags keep logins cheap; brute-force counting stays on.
var fastHashingFlags = []string{"--argon2-memory", "1MiB", "--argon2-time", "1", "--insecure-weak-password-hashing"}

// auditedServer starts the binary with a JSON-lines audit copy and debug
// logs, and returns it with an API client.
func auditedServer(t *testing.T, extra ...string) (*proc, *apptest.Server, string) {
	t.Helper()
	dir := freshDataDir(t)
	copyFile := filepath.Join(t.TempDir(), "audit.jsonl")
	args := append([]string{"--log-level", "debug", "--audit-file", copyFile}, fastHashingFlags...)
	p := startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + privacyAdminPassword}, dir, append(args, extra...)...)
	return p, &apptest.Server{URL: p.url, DataDir: dir, Client: p.client()}, copyFile
}

// workload drives one user's life through the API: created, logged in
// (with failures, and an unknown name), given a service account, a token,
// a grant and a refusal, then erased. It returns every secret and
// personal string the server saw.
func workload(t *testing.T, s *apptest.Server) []string {
	t.Helper()
	seen := []string{privacyAdminPassword, privacyUser, privacyEmail, privacyUserPassword, privacyWrongPassword, privacyGhost, privacyBot}
	admin := s.Login(t, "admin", privacyAdminPassword)
	seen = append(seen, admin.AccessToken, admin.RefreshToken, admin.IDToken)

	created := apptest.Decode[struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}](t, s.Do(t, "POST", "/api/v1/accounts", admin.AccessToken, map[string]string{"name": privacyUser, "email": privacyEmail}), http.StatusCreated)
	seen = append(seen, created.InitialPassword)
	first := s.Login(t, privacyUser, created.InitialPassword)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/me/password", first.AccessToken,
		map[string]string{"current_password": created.InitialPassword, "new_password": privacyUserPassword}), http.StatusNoContent)
	for _, name := range []string{privacyUser, privacyGhost} {
		res := s.Do(t, "POST", "/api/v1/login", "", map[string]string{"username": name, "password": privacyWrongPassword})
		apptest.WantStatus(t, res, http.StatusUnauthorized)
	}
	user := s.Login(t, privacyUser, privacyUserPassword)
	seen = append(seen, first.AccessToken, first.RefreshToken, user.AccessToken, user.RefreshToken, user.IDToken)

	bot := apptest.Decode[struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}](t, s.Do(t, "POST", "/api/v1/service-accounts", user.AccessToken, map[string]string{"name": privacyBot}), http.StatusCreated)
	seen = append(seen, bot.ClientSecret)
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequest("POST", s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(bot.ID, bot.ClientSecret)
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var botToken apptest.Tokens
	if err := json.NewDecoder(res.Body).Decode(&botToken); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	seen = append(seen, botToken.AccessToken)

	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin.AccessToken, map[string]string{"name": "org.privacy"}), http.StatusCreated)
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/grants", admin.AccessToken, map[string]string{
		"subject_kind": "user", "subject_id": created.ID, "domain": "org.privacy", "privilege": "read"}), http.StatusCreated)
	apptest.WantError(t, s.Do(t, "GET", "/api/v1/accounts", user.AccessToken, nil), http.StatusForbidden, "forbidden")
	apptest.WantStatus(t, s.Do(t, "GET", "/api/v1/me", user.AccessToken+"x", nil), http.StatusUnauthorized)

	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/service-accounts/"+bot.ID, user.AccessToken, nil), http.StatusNoContent)
	apptest.WantStatus(t, s.Do(t, "DELETE", "/api/v1/accounts/"+created.ID, admin.AccessToken, nil), http.StatusNoContent)
	return seen
}

// TestNoPersonalDataInLogs: after a full workload, neither the server's
// logs (debug level) nor its audit copy nor its database file holds a
// user name, e-mail, password or token in clear; the erased user's name
// is gone from the database file too.
func TestNoPersonalDataInLogs(t *testing.T) {
	t.Parallel()
	p, s, copyFile := auditedServer(t, "--audit-stdout")
	seen := workload(t, s)
	s.Client.CloseIdleConnections()
	p.stopOK()

	copyData, err := os.ReadFile(copyFile) // #nosec G304 -- the test's own file
	if err != nil {
		t.Fatal(err)
	}
	// The places searched hold what they should (so finding nothing in
	// them means something): the workload's records, its request log.
	if !bytes.Contains(copyData, []byte(`"action":"account.delete"`)) || !bytes.Contains(copyData, []byte(`"type":"checkpoint"`)) ||
		!bytes.Contains(copyData, []byte(`"target_id":"org.privacy"`)) || !strings.Contains(p.stdout.String(), `"action":"login"`) {
		t.Errorf("the audit copies lack the workload's records or a checkpoint:\n%s", copyData)
	}
	if n := p.countLogs(msgIs("request")); n < 15 {
		t.Errorf("%d request log lines, want one per request of the workload", n)
	}
	places := map[string]string{
		"stderr (logs)":      p.stderr.String(),
		"stdout (audit)":     p.stdout.String(),
		"audit copy file":    string(copyData),
		"database after all": readDatabaseFiles(t, s.DataDir),
	}
	for where, text := range places {
		for _, secret := range seen {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("%s contains %q", where, secret)
			}
		}
	}
	// Client addresses are personal data: no log line has a field for one.
	for _, e := range p.logs() {
		for k := range e {
			switch strings.ToLower(k) {
			case "remote", "remote_addr", "client", "client_addr", "ip", "addr", "peer":
				t.Errorf("log line %q has a %q field", e.msg(), k)
			}
		}
	}
}

// readDatabaseFiles returns the raw bytes of the database and its WAL.
func readDatabaseFiles(t *testing.T, dataDir string) string {
	t.Helper()
	var all []byte
	for _, name := range []string{datadir.DatabaseFile, datadir.DatabaseFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dataDir, name)) // #nosec G304 -- the test's own data directory
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return string(all)
}

// auditMutation is one way an attacker with write access to the database
// file (and the wit to drop the triggers) changes the log.
type auditMutation struct {
	name string
	sql  func(seq uint64, last uint64) []string
	// copyOnly: only the JSON-lines copy outside the database shows it.
	copyOnly bool
}

var auditMutations = []auditMutation{
	{name: "edit the action", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`UPDATE audit_records SET action = action || 'x' WHERE seq = %d`, seq)}
	}},
	{name: "edit the outcome", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`UPDATE audit_records SET outcome = CASE outcome WHEN 'success' THEN 'failure' ELSE 'success' END WHERE seq = %d`, seq)}
	}},
	{name: "edit the actor", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`UPDATE audit_records SET actor = 'p-' || substr(hex(randomblob(32)), 1, 64) WHERE seq = %d`, seq)}
	}},
	{name: "edit the time", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`UPDATE audit_records SET time = '2001-01-01T00:00:00.000000000Z' WHERE seq = %d`, seq)}
	}},
	{name: "delete", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`DELETE FROM audit_records WHERE seq = %d`, seq)}
	}},
	{name: "insert a copy", sql: func(seq, last uint64) []string {
		// Make room by moving records seq.. up by one (through numbers
		// above last, so no two rows ever share a seq), then put a copy
		// of record seq at seq.
		return []string{
			fmt.Sprintf(`UPDATE audit_records SET seq = seq + %d WHERE seq >= %d`, last+1, seq),
			fmt.Sprintf(`UPDATE audit_records SET seq = seq - %d WHERE seq > %d`, last, last),
			fmt.Sprintf(`INSERT INTO audit_records SELECT %d, time, actor, actor_kind, source, action, target_kind, target_domain,
				target_id, outcome, reason, request_id, prev_hash, hash FROM audit_records WHERE seq = %d`, seq, seq+1),
		}
	}},
	{name: "swap with the next", sql: func(seq, last uint64) []string {
		next := seq + 1
		if next > last {
			seq, next = seq-1, seq
		}
		parked := last + 100
		return []string{
			fmt.Sprintf(`UPDATE audit_records SET seq = %d WHERE seq = %d`, parked, seq),
			fmt.Sprintf(`UPDATE audit_records SET seq = %d WHERE seq = %d`, seq, next),
			fmt.Sprintf(`UPDATE audit_records SET seq = %d WHERE seq = %d`, next, parked),
		}
	}},
	{name: "truncate from here", sql: func(seq, _ uint64) []string {
		return []string{fmt.Sprintf(`DELETE FROM audit_records WHERE seq >= %d`, seq)}
	}},
	{name: "truncate with the checkpoints", copyOnly: true, sql: func(seq, _ uint64) []string {
		return []string{
			fmt.Sprintf(`DELETE FROM audit_records WHERE seq >= %d`, seq),
			fmt.Sprintf(`DELETE FROM audit_checkpoints WHERE seq >= %d`, seq),
		}
	}},
}

// TestAuditMutationsOnRealData runs the workload on the real server, stops
// it (signing the chain head), then applies every mutation at every record
// to a copy of the database: each is detected, at the first affected
// record, by the offline verification alone or, for a truncation that
// also removes the checkpoints, against the JSON-lines copy.
func TestAuditMutationsOnRealData(t *testing.T) {
	t.Parallel()
	p, s, copyFile := auditedServer(t)
	workload(t, s)
	s.Client.CloseIdleConnections()
	p.stopOK()

	code, stdout, stderr := runRampart(t, nil, "audit", "verify", "--data-dir", s.DataDir)
	if code != 0 {
		t.Fatalf("audit verify of the untouched log: exit %d\n%s%s", code, stdout, stderr)
	}
	dbPath := filepath.Join(s.DataDir, datadir.DatabaseFile)
	pub, err := audit.LoadPublicKey(filepath.Join(s.DataDir, datadir.KeysDir, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	last := lastSeq(t, dbPath)
	if last < 20 {
		t.Fatalf("the workload wrote only %d records", last)
	}
	tried, detected := 0, 0
	for _, m := range auditMutations {
		for seq := uint64(1); seq <= last; seq++ {
			tried++
			mutated := filepath.Join(t.TempDir(), "rampart.db")
			copyDatabase(t, dbPath, mutated)
			tamper(t, mutated, m.sql(seq, last)...)
			bad, err := verifyFile(t, mutated, copyFile, pub, m.copyOnly)
			switch {
			case err != nil:
				t.Errorf("%s at %d: verification failed to run: %v", m.name, seq, err)
			case bad == 0:
				t.Errorf("%s at %d: not detected", m.name, seq)
			default:
				detected++
			}
		}
	}
	t.Logf("%d of %d mutations of %d real records detected", detected, tried, last)

	// The command line names the first bad record and exits 1.
	mutated := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(mutated, datadir.KeysDir), 0o700); err != nil {
		t.Fatal(err)
	}
	copyDatabase(t, dbPath, filepath.Join(mutated, datadir.DatabaseFile))
	tamper(t, filepath.Join(mutated, datadir.DatabaseFile), auditMutations[0].sql(7, last)...)
	code, stdout, stderr = runRampart(t, nil, "audit", "verify", "--data-dir", mutated,
		"--public-key", filepath.Join(s.DataDir, datadir.KeysDir, audit.PublicKeyFile))
	if code != 1 || !strings.Contains(stdout+stderr, "record 7") {
		t.Errorf("audit verify of an edited record 7: exit %d, want 1 naming record 7\n%s%s", code, stdout, stderr)
	}
}

// verifyFile verifies a database file offline (and against the copy when
// copyOnly) and returns the first bad seq it names (0: intact).
func verifyFile(t *testing.T, dbPath, copyFile string, pub []byte, copyOnly bool) (uint64, error) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, dbPath)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	_, err = audit.Verify(ctx, st, pub)
	if copyOnly && err == nil {
		f, ferr := os.Open(copyFile) // #nosec G304 -- the test's own file
		if ferr != nil {
			return 0, ferr
		}
		defer f.Close()
		_, err = audit.VerifyCopy(ctx, st, f, pub)
	}
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		return ve.Seq, nil
	}
	return 0, err
}

func lastSeq(t *testing.T, dbPath string) uint64 {
	t.Helper()
	st, err := sqlite.OpenReadOnly(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var last uint64
	err = st.InTx(context.Background(), func(tx store.Tx) error {
		head, ok, err := tx.Audit().AuditHead(context.Background())
		if ok {
			last = head.Seq
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// copyDatabase copies a stopped server's database file (no WAL left).
func copyDatabase(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from) // #nosec G304 -- the test's own data directory
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tamper drops the append-only triggers, as an attacker with the file
// would, and runs stmts.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, trig := range []string{"audit_records_no_update", "audit_records_no_delete", "audit_records_no_replace",
		"audit_checkpoints_no_update", "audit_checkpoints_no_delete", "audit_checkpoints_no_replace"} {
		stmts = append([]string{"DROP TRIGGER IF EXISTS " + trig}, stmts...)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestKillDuringAuditedChanges kills the server with SIGKILL in the middle
// of a burst of audited changes: on restart the chain verifies, and every
// domain that exists has its record (no change without its record).
func TestKillDuringAuditedChanges(t *testing.T) {
	t.Parallel()
	p, s, _ := auditedServer(t)
	admin := s.Login(t, "admin", privacyAdminPassword)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]string{"name": fmt.Sprintf("org.burst.w%d.d%d", w, i)})
				req, _ := http.NewRequest("POST", s.URL+"/api/v1/domains", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+admin.AccessToken)
				req.Header.Set("Content-Type", "application/json")
				res, err := s.Client.Do(req)
				if err != nil {
					return // the server is gone
				}
				res.Body.Close()
			}
		}()
	}
	// Let the burst run until some changes have committed, then kill.
	deadline := time.Now().Add(30 * time.Second)
	for countDomains(t, s, admin.AccessToken) < 20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(exitTimeout)
	close(stop)
	wg.Wait()

	code, stdout, stderr := runRampart(t, nil, "audit", "verify", "--data-dir", s.DataDir)
	if code != 0 {
		t.Fatalf("audit verify after SIGKILL: exit %d\n%s%s", code, stdout, stderr)
	}
	domains, recorded := auditedDomains(t, filepath.Join(s.DataDir, datadir.DatabaseFile))
	if len(domains) < 20 {
		t.Fatalf("only %d domains committed before the kill", len(domains))
	}
	for d := range domains {
		if !recorded[d] {
			t.Errorf("domain %s exists without its domain.create record", d)
		}
	}
	for d := range recorded {
		if !domains[d] {
			t.Errorf("a domain.create record names %s, which does not exist", d)
		}
	}
	// And the server starts again on the same data, with the chain intact.
	p2 := startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + privacyAdminPassword}, s.DataDir, fastHashingFlags...)
	p2.stopOK()
	if code, stdout, stderr := runRampart(t, nil, "audit", "verify", "--data-dir", s.DataDir); code != 0 {
		t.Fatalf("audit verify after the restart: exit %d\n%s%s", code, stdout, stderr)
	}
}

func countDomains(t *testing.T, s *apptest.Server, token string) int {
	t.Helper()
	res := s.Do(t, "GET", "/api/v1/domains", token, nil)
	var list []struct{ Name string }
	if err := json.Unmarshal(res.Body, &list); err != nil {
		return 0
	}
	return len(list)
}

// auditedDomains reads the domains and the successful domain.create
// records straight from the database file.
func auditedDomains(t *testing.T, dbPath string) (domains, recorded map[string]bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read := func(q string) map[string]bool {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[s] = true
		}
		return out
	}
	return read(`SELECT name FROM domains`),
		read(`SELECT target_id FROM audit_records WHERE action = 'domain.create' AND outcome = 'success'`)
}
