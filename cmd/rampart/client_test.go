package main

// Unit tests of the client's pieces that need no server: server URLs,
// the credentials file, and reading the server's error answers.

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoginServerURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want "" for an error
	}{
		{"https://rampart.example:8443", "https://rampart.example:8443"},
		{"https://rampart.example:8443/", "https://rampart.example:8443"},
		{"https://rampart.example/base//", "https://rampart.example/base"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"rampart.example:8443", ""},
		{"ftp://rampart.example", ""},
		{"https://", ""},
		{"https://user:pw@rampart.example", ""},
		{"https://rampart.example/?x=1", ""},
		{"https://rampart.example/#top", ""},
		{"://", ""},
	} {
		got, err := normalizeServer(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("normalizeServer(%q) = %q, want an error", tc.in, got)
		case tc.want == "" && !errors.Is(err, errUsage):
			t.Errorf("normalizeServer(%q): error %v is not a usage error", tc.in, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("normalizeServer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoginSettingsFromEnvironment(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		name  string
		flags clientFlags
		env   map[string]string
		want  settings
	}{
		{
			name: "defaults under HOME",
			env:  map[string]string{"HOME": "/home/u"},
			want: settings{credentials: "/home/u/.config/rampart/credentials.json"},
		},
		{
			name: "XDG_CONFIG_HOME wins over HOME",
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg"},
			want: settings{credentials: "/xdg/rampart/credentials.json"},
		},
		{
			name: "relative XDG_CONFIG_HOME is ignored",
			env:  map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "rel"},
			want: settings{credentials: "/home/u/.config/rampart/credentials.json"},
		},
		{
			name: "environment",
			env:  map[string]string{"RAMPART_SERVER": "https://a.example/", "RAMPART_CA_FILE": "/ca.pem", "RAMPART_CREDENTIALS": "/c.json"},
			want: settings{server: "https://a.example", caFile: "/ca.pem", credentials: "/c.json"},
		},
		{
			name:  "flags win over the environment",
			flags: clientFlags{server: "https://b.example", caFile: "/b.pem", credentials: "/b.json", insecureHTTP: true},
			env:   map[string]string{"RAMPART_SERVER": "https://a.example", "RAMPART_CA_FILE": "/ca.pem", "RAMPART_CREDENTIALS": "/c.json"},
			want:  settings{server: "https://b.example", caFile: "/b.pem", credentials: "/b.json", insecureHTTP: true},
		},
	} {
		got, err := tc.flags.resolve(env(tc.env))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(settings{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if _, err := (&clientFlags{}).resolve(env(nil)); !errors.Is(err, errUsage) {
		t.Errorf("no HOME, no XDG_CONFIG_HOME, no --credentials: error %v, want a usage error", err)
	}
}

func TestLoginCredentialsFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "credentials.json")
	if _, err := loadCredentials(path, io.Discard); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("load a missing file: %v, want errNotLoggedIn", err)
	}
	want := credentials{Server: "https://r.example", CAFile: "/ca.pem", TokenType: "Bearer", AccessToken: "at", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i := 0; i < 2; i++ { // the second save replaces the first
		if err := saveCredentials(path, want); err != nil {
			t.Fatal(err)
		}
	}
	wantMode(t, path, 0o600)
	wantMode(t, dir, 0o700)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only the credentials file", entries, err)
	}
	got, err := loadCredentials(path, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var warn strings.Builder
	if _, err := loadCredentials(path, &warn); err != nil {
		t.Fatal(err)
	}
	wantContains(t, "warning", warn.String(), "chmod 600 "+path)

	for name, data := range map[string]string{"not JSON": "{", "no token": `{"server":"https://r.example"}`, "bad server": `{"server":"x","access_token":"a"}`} {
		writeFile(t, path, []byte(data), 0o600)
		if _, err := loadCredentials(path, io.Discard); err == nil || !strings.Contains(err.Error(), "rampart login") {
			t.Errorf("%s: error %v, want one that says to log in again", name, err)
		}
	}

	if err := removeCredentials(path); err != nil {
		t.Fatal(err)
	}
	if err := removeCredentials(path); err != nil {
		t.Errorf("remove a missing file: %v", err)
	}
}

func TestLoginTokenExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		c    credentials
		want bool
	}{
		{credentials{AccessToken: "a", Expiry: now.Add(time.Hour)}, false},
		{credentials{AccessToken: "a"}, false}, // no expiry given
		{credentials{AccessToken: "a", Expiry: now.Add(10 * time.Second)}, true},
		{credentials{AccessToken: "a", Expiry: now.Add(-time.Second)}, true},
		{credentials{Expiry: now.Add(time.Hour)}, true},
	} {
		if got := tc.c.expired(now); got != tc.want {
			t.Errorf("expiry in %v, token %q: expired %t, want %t", tc.c.Expiry.Sub(now), tc.c.AccessToken, got, tc.want)
		}
	}
}

var apiErrorCases = []struct {
	status      int
	contentType string
	body        string
	want        string
}{
	{401, "application/json", `{"error":"invalid user name or password","code":"invalid_credentials"}`, "invalid user name or password (invalid_credentials)"},
	{400, "application/json; charset=utf-8", `{"error":"invalid_grant","error_description":"refresh token is invalid"}`, "refresh token is invalid (invalid_grant)"},
	{400, "application/json", `{"error":"access_denied"}`, "the server answered bad request (access_denied)"},
	{502, "text/html", `<html>bad gateway</html>`, "the server answered bad gateway (http_502)"},
	{500, "application/json", `not json`, "the server answered internal server error (http_500)"},
	{404, "", ``, "the server answered not found (http_404)"},
}

func TestLoginAPIErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range apiErrorCases {
		if got := apiErrorFrom(tc.status, tc.contentType, []byte(tc.body)).Error(); got != tc.want {
			t.Errorf("%d %s %s: %q, want %q", tc.status, tc.contentType, tc.body, got, tc.want)
		}
	}
}

// FuzzLoginAPIError: any answer from the server becomes a message and a
// code, without a panic.
func FuzzLoginAPIError(f *testing.F) {
	for _, tc := range apiErrorCases {
		f.Add(tc.status, tc.contentType, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		e := apiErrorFrom(status, contentType, body)
		if e.Msg == "" || e.Code == "" {
			t.Errorf("apiErrorFrom(%d, %q, %q) = %+v: empty message or code", status, contentType, body, e)
		}
	})
}
