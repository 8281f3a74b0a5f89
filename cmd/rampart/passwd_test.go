package main

import (
	"net/http"
	"strings"
	"testing"
)

// rampart passwd changes the password, keeps this login going with fresh
// tokens, and ends the other sessions; bad input never reaches the server.
func TestPasswd(t *testing.T) {
	t.Parallel()
	s := startIdentityServer(t)
	creds := credsPath(t)
	s.passwordLogin(t, creds)
	other := s.Login(t, s.user, s.password) // another session of the same user
	const changed = "a-different-passphrase-for-the-cli-test-7"

	args := append([]string{"passwd", "--stdin"}, s.clientArgs(creds)...)
	code, stdout, stderr := runWithStdin(t, s.password+"\n"+changed+"\n", nil, args...)
	if code != 0 {
		t.Fatalf("passwd: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "Password changed") || strings.Contains(stdout+stderr, changed) {
		t.Errorf("output %q / %q: want a confirmation and never the password", stdout, stderr)
	}
	if code, _, stderr := runRampart(t, nil, append([]string{"whoami"}, s.clientArgs(creds)...)...); code != 0 {
		t.Errorf("whoami after passwd: exit %d\n%s", code, stderr)
	}
	if res := s.Do(t, http.MethodGet, "/api/v1/me", other.AccessToken, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the other session after passwd: %d, want 401", res.StatusCode)
	}
	s.Login(t, s.user, changed)

	for name, tt := range map[string]struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		"no --stdin":        {"", nil, 2, "--stdin"},
		"one line":          {changed + "\n", []string{"--stdin"}, 2, "second"},
		"wrong current":     {"not-the-password-at-all\nanother-long-passphrase-here-9\n", []string{"--stdin"}, 1, "invalid_credentials"},
		"weak new password": {changed + "\nshort\n", []string{"--stdin"}, 1, "weak_password"},
	} {
		code, _, stderr := runWithStdin(t, tt.stdin, nil, append(append([]string{"passwd"}, tt.args...), s.clientArgs(creds)...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", name, code, stderr, tt.code, tt.want)
		}
	}
}
