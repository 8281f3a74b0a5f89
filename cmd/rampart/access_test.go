package main

// End-to-end tests of rampart domains, rampart grants and rampart access
// check: the built binary against a real server started with apptest.

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// grantIDLine is how grants add names the new grant.
var grantIDLine = regexp.MustCompile(`Created grant (g-[0-9a-f]+): `)

// TestAccessCommands walks one server through the life of a domain and a
// grant: each step depends on the ones before, so they run in order.
func TestAccessCommands(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)

	// rampart runs a command with the stored login and wants exit code.
	rampart := func(t *testing.T, code int, args ...string) (stdout, stderr string) {
		t.Helper()
		got, stdout, stderr := runRampart(t, nil, append(args, "--credentials", creds)...)
		wantNoCrash(t, stderr)
		if got != code {
			t.Fatalf("rampart %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, stdout, stderr)
		}
		return stdout, stderr
	}

	// A user to grant to, created through the API.
	admin := s.Login(t, s.user, s.password)
	res := s.Do(t, http.MethodPost, "/api/v1/accounts", admin.AccessToken, map[string]string{"name": "bob"})
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		t.Fatalf("create the user bob: %d %s", res.StatusCode, res.Body)
	}
	var bob struct{ ID string }
	if err := json.Unmarshal(res.Body, &bob); err != nil || bob.ID == "" {
		t.Fatalf("create the user bob: %s (%v)", res.Body, err)
	}

	// Domains: create (twice: the second is the server's refusal), list.
	stdout, _ := rampart(t, 0, "domains", "create", "team")
	wantContains(t, "domains create", stdout, "Created domain team")
	rampart(t, 0, "domains", "create", "--credentials", creds, "team.ml") // flags before the name too
	_, stderr := rampart(t, 1, "domains", "create", "team")
	wantContains(t, "domains create (again)", stderr, "rampart domains: ", "(domain_exists)")
	stdout, _ = rampart(t, 0, "domains", "list")
	wantContains(t, "domains list", stdout, "NAME", "CREATED", "\nteam ", "\nteam.ml ")
	stdout, _ = rampart(t, 0, "domains", "list", "--json")
	var domains []struct{ Name string }
	if err := json.Unmarshal([]byte(stdout), &domains); err != nil || len(domains) != 2 {
		t.Errorf("domains list --json: %v, want the two domains\n%s", err, stdout)
	}

	// Grants: add by user name and by id; the second is redundant, and
	// the server's message names the grant that makes it so.
	stdout, _ = rampart(t, 0, "grants", "add", "--user", "bob", "--domain", "team", "--privilege", "read")
	m := grantIDLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("grants add printed %q, want the new grant's id", stdout)
	}
	grant := m[1]
	wantContains(t, "grants add", stdout, "user "+bob.ID+" has read on team")
	_, stderr = rampart(t, 1, "grants", "add", "--subject", bob.ID, "--subject-kind", "user", "--domain", "team.ml", "--privilege", "infer")
	wantContains(t, "grants add (redundant)", stderr, "(grant_redundant)", grant)
	stdout, _ = rampart(t, 0, "grants", "list")
	wantContains(t, "grants list", stdout, "ID", "SUBJECT", "PRIVILEGE", grant, bob.ID, "team", "read")
	stdout, _ = rampart(t, 0, "grants", "list", "--json")
	var grants []struct{ ID, SubjectID, Domain, Privilege string }
	if err := json.Unmarshal([]byte(stdout), &grants); err != nil || len(grants) != 1 || grants[0].ID != grant {
		t.Errorf("grants list --json: %v, want the one grant %s\n%s", err, grant, stdout)
	}

	// Groups are names from identity providers; "*" reaches the targets
	// without a domain.
	stdout, _ = rampart(t, 0, "grants", "add", "--subject", "data-team", "--subject-kind", "group", "--domain", "*", "--privilege", "infer", "--json")
	var groupGrant struct{ ID string }
	if err := json.Unmarshal([]byte(stdout), &groupGrant); err != nil || groupGrant.ID == "" {
		t.Fatalf("grants add --json: %v\n%s", err, stdout)
	}
	stdout, _ = rampart(t, 0, "grants", "list")
	wantContains(t, "grants list", stdout, groupGrant.ID, "group", "data-team", "*", "infer")
	rampart(t, 0, "grants", "revoke", groupGrant.ID)

	// A domain that a grant names cannot be deleted.
	_, stderr = rampart(t, 1, "domains", "delete", "team")
	wantContains(t, "domains delete (in use)", stderr, "(domain_in_use)")

	// Access checks: bob may read a model in a subdomain through the
	// grant on team, but not change one in team, nor reach a model
	// without a domain.
	stdout, _ = rampart(t, 0, "access", "check", "--subject", bob.ID, "--kind", "model", "--domain", "team.ml", "--privilege", "read")
	wantContains(t, "access check (allowed)", stdout, "allowed\n", "effective: read", "grant:     "+grant+" (user "+bob.ID+" has read on team)")
	stdout, _ = rampart(t, exitDenied, "access", "check", "--user", "bob", "--kind", "model", "--domain", "team", "--privilege", "all")
	wantContains(t, "access check (denied)", stdout, "denied\n", "effective: read", "grant:     "+grant+" (user "+bob.ID+" has read on team)", "reason:    denied: the grants give only read")
	stdout, _ = rampart(t, exitDenied, "access", "check", "--subject", bob.ID, "--kind", "model", "--privilege", "infer", "--json")
	var check struct {
		Allowed   bool
		Effective string
		Reason    string
	}
	if err := json.Unmarshal([]byte(stdout), &check); err != nil || check.Allowed || check.Effective != "none" || !strings.Contains(check.Reason, `"*"`) {
		t.Errorf("access check --json without a domain: %v\n%s", err, stdout)
	}
	stdout, _ = rampart(t, 0, "access", "check", "--kind", "notebook", "--domain", "elsewhere", "--privilege", "all")
	wantContains(t, "access check (the admin)", stdout, "allowed\n", "effective: all", "admins hold all")
	_, stderr = rampart(t, 1, "access", "check", "--user", "nobody", "--kind", "model", "--privilege", "read")
	wantContains(t, "access check --user nobody", stderr, `no user named "nobody"`)

	// Revoke: the grant goes, a second revoke finds nothing, and the
	// domains can go.
	stdout, _ = rampart(t, 0, "grants", "revoke", grant)
	wantContains(t, "grants revoke", stdout, "Revoked grant "+grant)
	_, stderr = rampart(t, 1, "grants", "revoke", grant)
	wantContains(t, "grants revoke (again)", stderr, "(not_found)")
	stdout, _ = rampart(t, 0, "grants", "list")
	wantContains(t, "grants list after the revoke", stdout, "No grants.")
	rampart(t, exitDenied, "access", "check", "--subject", bob.ID, "--kind", "model", "--domain", "team.ml", "--privilege", "read")
	for _, d := range []string{"team.ml", "team"} {
		stdout, _ = rampart(t, 0, "domains", "delete", d)
		wantContains(t, "domains delete", stdout, "Deleted domain "+d)
	}
	_, stderr = rampart(t, 1, "domains", "delete", "team")
	wantContains(t, "domains delete (gone)", stderr, "(not_found)")
	stdout, _ = rampart(t, 0, "domains", "list")
	wantContains(t, "domains list at the end", stdout, "No domains.")
}

// TestAccessCommandUsage: wrong command lines exit 2 with a message that
// says what is wrong, before any login is needed.
func TestAccessCommandUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"domains"}, "missing subcommand"},
		{[]string{"domains", "rename"}, `unknown subcommand "rename"`},
		{[]string{"domains", "create"}, "missing the domain NAME"},
		{[]string{"domains", "create", "a", "b"}, `unexpected argument "b"`},
		{[]string{"domains", "delete", ""}, "the domain NAME is empty"},
		{[]string{"domains", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"domains", "list", "--bogus"}, "-bogus"},
		{[]string{"grants"}, "missing subcommand"},
		{[]string{"grants", "add", "--domain", "team", "--privilege", "read"}, "--subject ID or --user NAME is required"},
		{[]string{"grants", "add", "--subject", "u-1", "--privilege", "read"}, "--domain is required"},
		{[]string{"grants", "add", "--subject", "u-1", "--domain", "team"}, "--privilege is required"},
		{[]string{"grants", "add", "--subject", "u-1", "--domain", "team", "--privilege", "write"}, `--privilege "write"`},
		{[]string{"grants", "add", "--subject", "u-1", "--subject-kind", "robot", "--domain", "team", "--privilege", "read"}, `--subject-kind "robot"`},
		{[]string{"grants", "add", "--subject", "u-1", "--user", "bob", "--domain", "team", "--privilege", "read"}, "choose one"},
		{[]string{"grants", "add", "--user", "bob", "--subject-kind", "group", "--domain", "team", "--privilege", "read"}, "--user names a user"},
		{[]string{"grants", "revoke"}, "missing the grant ID"},
		{[]string{"grants", "add", "--privilege", "write"}, "--subject ID or --user NAME is required; --domain is required"},
		{[]string{"access"}, "missing subcommand"},
		{[]string{"access", "check", "--privilege", "read"}, "--kind is required"},
		{[]string{"access", "check", "--kind", "robot", "--privilege", "read"}, `--kind "robot": the kinds are model,`},
		{[]string{"access", "check", "--kind", "model"}, "--privilege is required"},
		{[]string{"access", "check", "--kind", "model", "--privilege", "none"}, `--privilege "none"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runRampart(t, nil, append(tc.args, "--credentials", "/nonexistent/credentials.json")...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			wantNoCrash(t, stderr)
			wantContains(t, "stderr", stderr, "rampart "+tc.args[0]+": ", tc.want)
		})
	}

	// Not logged in is an error (1), not a denial (3).
	code, _, stderr := runRampart(t, nil, "access", "check", "--kind", "model", "--privilege", "read", "--credentials", "/nonexistent/credentials.json")
	if code != 1 {
		t.Errorf("access check when not logged in: exit %d, want 1", code)
	}
	wantContains(t, "stderr", stderr, "not logged in")
}

// TestAccessCommandHelp: every subcommand has --help, which names the
// client settings and exits 0; each command lists its subcommands.
func TestAccessCommandHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"domains", "list"}, {"domains", "create"}, {"domains", "delete"},
		{"grants", "list"}, {"grants", "add"}, {"grants", "revoke"}, {"access", "check"},
	} {
		code, stdout, stderr := runRampart(t, nil, append(args, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d\n%s", args, code, stderr)
		}
		wantContains(t, strings.Join(args, " ")+" --help", stdout, "Usage: rampart "+strings.Join(args, " "), "RAMPART_SERVER", "-insecure-http")
	}
	for cmd, subs := range map[string][]string{"domains": {"list", "create", "delete"}, "grants": {"list", "add", "revoke"}, "access": {"check"}} {
		code, stdout, stderr := runRampart(t, nil, cmd, "help")
		if code != 0 {
			t.Errorf("%s help: exit %d\n%s", cmd, code, stderr)
		}
		wantContains(t, cmd+" help", stdout, subs...)
	}
	_, stdout, _ := runRampart(t, nil, "access", "check", "--help")
	wantContains(t, "access check --help", stdout, "3 denied")
	_, stdout, _ = runRampart(t, nil, "help")
	wantContains(t, "rampart help", stdout, "rampart domains", "rampart grants", "rampart access check")
}
