package main

// End-to-end tests of rampart audit export, tail and resolve and rampart
// account export: the built binary against a real server started with
// apptest.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// auditorPassword is the password test auditors are given.
const auditorPassword = "copper-Harbor-meadow-7731-drift"

// newAuditor creates the account name with the auditor role (set in the
// store: before its first request, so no cache holds it without), gives
// it a password, and logs the CLI in as it; it returns the credentials
// file and the account id.
func (s *idServer) newAuditor(t *testing.T, name string) (creds, id string) {
	t.Helper()
	admin := s.Login(t, s.user, s.password).AccessToken
	res := s.Do(t, http.MethodPost, "/api/v1/accounts", admin, map[string]string{"name": name})
	var created struct {
		ID              string `json:"id"`
		InitialPassword string `json:"initial_password"`
	}
	if err := json.Unmarshal(res.Body, &created); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, res.StatusCode, res.Body)
	}
	s.MakeAuditor(t, created.ID)
	first := s.Login(t, name, created.InitialPassword).AccessToken
	res = s.Do(t, http.MethodPost, "/api/v1/me/password", first,
		map[string]string{"current_password": created.InitialPassword, "new_password": auditorPassword})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("change %s's password: %d %s", name, res.StatusCode, res.Body)
	}
	creds = credsPath(t)
	auditor := &idServer{Server: s.Server, caFile: s.caFile, user: name, password: auditorPassword}
	auditor.passwordLogin(t, creds)
	return creds, created.ID
}

// exported is a JSON line of audit export or tail.
type exported struct {
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	TargetID  string `json:"target_id"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
}

func parseLines(t *testing.T, out string) []exported {
	t.Helper()
	var recs []exported
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r exported
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Type != "record" {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// rampartOK runs the binary and fails the test unless it exits with code.
func rampartOK(t *testing.T, code int, args ...string) (stdout, stderr string) {
	t.Helper()
	got, stdout, stderr := runRampart(t, nil, args...)
	wantNoCrash(t, stderr)
	if got != code {
		t.Fatalf("rampart %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), got, code, stderr)
	}
	return stdout, stderr
}

// TestAuditExportCommand: an auditor exports the whole log through pages
// of the API, or the part after a seq or since a time, and resolves a
// pseudonym from it; an admin is refused.
func TestAuditExportCommand(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds, _ := s.newAuditor(t, "audra")
	admin := s.Login(t, s.user, s.password).AccessToken
	res := s.Do(t, http.MethodPost, "/api/v1/domains", admin, map[string]string{"name": "com.acme"})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create a domain: %d %s", res.StatusCode, res.Body)
	}
	// More records than one page holds.
	rec := s.App.Recorder()
	s.InTx(t, func(ctx context.Context, tx store.Tx) error {
		for range recordsPageSize + 5 {
			if err := rec.Record(ctx, tx, audit.Entry{Action: "test.fill", Actor: &audit.Actor{ID: "test", Kind: audit.ActorSystem}}); err != nil {
				return err
			}
		}
		return nil
	})

	stdout, _ := rampartOK(t, 0, "audit", "export", "--credentials", creds)
	all := parseLines(t, stdout)
	if len(all) < recordsPageSize+7 {
		t.Fatalf("exported %d records", len(all))
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) || (i > 0 && r.PrevHash != all[i-1].Hash) {
			t.Fatalf("line %d: seq %d: not the chain from 1", i, r.Seq)
		}
	}
	// Two pages, two recorded reads: each is recorded before it is
	// answered, so the first read's record is on the second page, and the
	// second's comes after everything exported.
	var reads []string
	for _, r := range all {
		if r.Action == "audit.export" {
			reads = append(reads, r.Reason)
		}
	}
	if got := strings.Join(reads, "|"); got != "after_seq=0 limit=10000" {
		t.Errorf("recorded reads %q", reads)
	}
	i := slices.IndexFunc(all, func(r exported) bool { return r.Action == "domain.create" && r.TargetID == "com.acme" })
	if i < 0 {
		t.Fatal("no domain.create record")
	}
	adminPseudonym := all[i].Actor

	// --after-seq, --since.
	stdout, _ = rampartOK(t, 0, "audit", "export", "--after-seq", "10005", "--credentials", creds)
	if got := parseLines(t, stdout); len(got) == 0 || got[0].Seq != 10006 {
		t.Errorf("--after-seq 10005: %d lines, want them from 10006\n%s", len(got), stdout)
	}
	stdout, _ = rampartOK(t, 0, "audit", "export", "--since", "2999-01-01T00:00:00Z", "--credentials", creds)
	if stdout != "" {
		t.Errorf("--since 2999: %q", stdout)
	}
	stdout, _ = rampartOK(t, 0, "audit", "export", "--since", "1h", "--format", "jsonl", "--credentials", creds)
	if got := parseLines(t, stdout); len(got) < len(all) {
		t.Errorf("--since 1h: %d lines, want at least %d", len(got), len(all))
	}

	// resolve
	stdout, _ = rampartOK(t, 0, "audit", "resolve", adminPseudonym, "--credentials", creds)
	wantContains(t, "audit resolve", stdout, "pseudonym:  "+adminPseudonym, "kind:       user", "name:       admin")
	stdout, _ = rampartOK(t, 0, "audit", "resolve", "--json", "--credentials", creds, adminPseudonym)
	var resolved resolvedPseudonym
	if err := json.Unmarshal([]byte(stdout), &resolved); err != nil || resolved.Name != "admin" || resolved.SubjectID == "" {
		t.Errorf("audit resolve --json: %v\n%s", err, stdout)
	}
	_, stderr := rampartOK(t, 1, "audit", "resolve", "p-"+strings.Repeat("0", 64), "--credentials", creds)
	wantContains(t, "audit resolve (unknown)", stderr, "pseudonym not found", "(not_found)")

	// The admin is no auditor.
	adminCreds := credsPath(t)
	s.passwordLogin(t, adminCreds)
	_, stderr = rampartOK(t, 1, "audit", "export", "--credentials", adminCreds)
	wantContains(t, "audit export as admin", stderr, "auditor role", "(forbidden)")
}

// TestAuditReadCommandUsage: wrong command lines exit 2 before any login.
func TestAuditReadCommandUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "export", "--format", "csv"}, `--format "csv": the only format is jsonl`},
		{[]string{"audit", "export", "--since", "yesterday"}, `--since "yesterday": give an RFC 3339 time`},
		{[]string{"audit", "export", "--since", "-5h"}, `--since "-5h"`},
		{[]string{"audit", "export", "--after-seq", "-1"}, "-after-seq"},
		{[]string{"audit", "export", "extra"}, `unexpected argument "extra"`},
		{[]string{"audit", "tail", "--interval", "1ms"}, "--interval 1ms: give 100ms or more"},
		{[]string{"audit", "resolve"}, "missing the PSEUDONYM"},
		{[]string{"audit", "resolve", "alice"}, `"alice" is not a pseudonym`},
		{[]string{"account"}, "missing subcommand"},
		{[]string{"account", "delete"}, `unknown subcommand "delete"`},
		{[]string{"account", "export", "x"}, `unexpected argument "x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr := rampartOK(t, exitUsage, append(tc.args, "--credentials", "/nonexistent/credentials.json")...)
			wantContains(t, "stderr", stderr, "rampart "+tc.args[0]+": ", tc.want)
		})
	}
	for _, args := range [][]string{{"audit", "export"}, {"audit", "tail"}, {"audit", "resolve"}, {"account", "export"}} {
		stdout, _ := rampartOK(t, 0, append(args, "--help")...)
		wantContains(t, strings.Join(args, " ")+" --help", stdout, "Usage: rampart "+strings.Join(args, " "), "RAMPART_SERVER")
	}
	stdout, _ := rampartOK(t, 0, "audit", "help")
	wantContains(t, "audit help", stdout, "verify", "export", "tail", "resolve")
}

// TestAuditTailCommand: tail starts at the end, prints what happens next,
// not its own polling, and exits 0 on Ctrl-C.
func TestAuditTailCommand(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds, _ := s.newAuditor(t, "audra")
	admin := s.Login(t, s.user, s.password).AccessToken
	createDomain := func(name string) {
		t.Helper()
		if res := s.Do(t, http.MethodPost, "/api/v1/domains", admin, map[string]string{"name": name}); res.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, res.StatusCode, res.Body)
		}
	}
	createDomain("com.before")

	p := startProc(t, nil, "audit", "tail", "--interval", "100ms", "--credentials", creds)
	// Tail reads the end without a trace (a read with nothing new is not
	// recorded), so changes are made until it prints one.
	for i := 0; !strings.Contains(p.stdout.String(), `"com.after`); i++ {
		if i == 50 {
			t.Fatalf("tail printed no new domain\nstdout: %s\nstderr: %s", p.stdout, p.stderr)
		}
		createDomain("com.after" + strconv.Itoa(i))
		waitOutput(p, 200*time.Millisecond, func() bool { return strings.Contains(p.stdout.String(), `"com.after`) })
	}
	if code := p.stop(syscall.SIGINT); code != 0 {
		t.Errorf("tail after SIGINT: exit %d, want 0\nstderr: %s", code, p.stderr)
	}
	for _, r := range parseLines(t, p.stdout.String()) {
		if r.TargetID == "com.before" || r.Action == "audit.export" {
			t.Errorf("tail printed %+v", r)
		}
	}
}

// waitOutput waits until cond holds, re-checking whenever stdout grows.
func waitOutput(p *proc, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := p.stdout.changed()
		if cond() {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return cond()
		case <-deadline.C:
			return false
		}
	}
}

// TestAccountExportCommand: the logged-in account's export, as JSON.
func TestAccountExportCommand(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	admin := s.Login(t, s.user, s.password).AccessToken
	if res := s.Do(t, http.MethodPost, "/api/v1/domains", admin, map[string]string{"name": "com.acme"}); res.StatusCode != http.StatusCreated {
		t.Fatalf("create a domain: %d %s", res.StatusCode, res.Body)
	}
	stdout, _ := rampartOK(t, 0, "account", "export", "--credentials", creds)
	var doc struct {
		Subject      struct{ ID, Kind, Pseudonym string }
		Profile      struct{ Name string }
		OwnedTargets struct {
			Domains []struct{ Name string }
		} `json:"owned_targets"`
		AuditRecords []exported `json:"audit_records"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if doc.Subject.Kind != "user" || doc.Profile.Name != s.user || len(doc.OwnedTargets.Domains) != 1 ||
		len(doc.AuditRecords) < 2 || doc.AuditRecords[len(doc.AuditRecords)-1].Action != "account.export" {
		t.Errorf("export:\n%s", stdout)
	}
	if !strings.HasPrefix(stdout, "{\n  \"") {
		t.Errorf("export is not indented: %.40q", stdout)
	}
}
