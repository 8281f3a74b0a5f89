package accounts

// White-box tests and fuzz targets for the parsers of untrusted input:
// names, e-mail addresses, client JWKs and TOTP enrollment tokens.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/secrets"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

var nameCases = []struct {
	name string
	ok   bool
}{
	{"a", true}, {"alice", true}, {"svc.ci-bot_2", true}, {"0day", true}, {strings.Repeat("x", 64), true},
	{"", false}, {"Alice", false}, {"-lead", false}, {".dot", false}, {"_u", false}, {"a b", false},
	{"é", false}, {"a/b", false}, {strings.Repeat("x", 65), false}, {"a\x00", false},
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, tc := range nameCases {
		if got := validateName("name", tc.name) == nil; got != tc.ok {
			t.Errorf("validateName(%q) ok = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, tc := range nameCases {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := validateName("name", name) == nil, nameRE.MatchString(name); got != want {
			t.Errorf("validateName(%q) ok = %v, the grammar says %v", name, got, want)
		}
	})
}

var emailCases = []struct {
	email string
	ok    bool
}{
	{"", true}, {"a@example.com", true}, {"first.last+tag@sub.example.org", true},
	{"no-at-sign", false}, {"@example.com", false}, {"a@", false}, {"a b@example.com", false},
	{"Name <a@example.com>", false}, {"a@example.com\n", false}, {strings.Repeat("a", 250) + "@x.io", false},
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range emailCases {
		if got := validateEmail(tc.email) == nil; got != tc.ok {
			t.Errorf("validateEmail(%q) ok = %v, want %v", tc.email, got, tc.ok)
		}
	}
}

func FuzzValidateEmail(f *testing.F) {
	for _, tc := range emailCases {
		f.Add(tc.email)
	}
	f.Fuzz(func(t *testing.T, email string) {
		if validateEmail(email) != nil || email == "" {
			return
		}
		if len(email) > maxEmailLen || strings.ContainsAny(email, " \t\r\n<>") || !strings.Contains(email, "@") {
			t.Errorf("validateEmail accepted %q", email)
		}
	})
}

func ecJWK(t testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k1"}.MarshalJSON()
	return pub
}

func FuzzParseClientKey(f *testing.F) {
	f.Add(ecJWK(f))
	f.Add([]byte(`{"kty":"oct","k":"c2VjcmV0"}`))
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := parseClientKey(raw)
		if err != nil {
			return
		}
		if !k.IsPublic() || !k.Valid() || !validKeyID(k.KeyID) || k.Use != "sig" {
			t.Fatalf("accepted an unusable key: %+v", k)
		}
		// What is stored parses back to the same public key.
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back jose.JSONWebKey
		if err := json.Unmarshal(b, &back); err != nil || !back.IsPublic() || back.KeyID != k.KeyID {
			t.Fatalf("stored key %s does not parse back: %v", b, err)
		}
	})
}

func TestParseClientKeyDropsExtras(t *testing.T) {
	t.Parallel()
	raw := strings.Replace(string(ecJWK(t)), "{", `{"x5u":"https://attacker.example/x","key_ops":["sign"],`, 1)
	k, err := parseClientKey(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.MarshalJSON()
	if strings.Contains(string(b), "attacker") || strings.Contains(string(b), "key_ops") {
		t.Errorf("stored JWK keeps client extras: %s", b)
	}
}

func testService(t testing.TB, now time.Time) *Service {
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	sealer, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Sealer: sealer, Now: func() time.Time { return now }})
}

func TestOpenEnrollment(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := testService(t, now)
	exp := now.Add(totpEnrollmentTTL).Unix()
	sealed, err := s.opt.Sealer.Seal([]byte("SECRET"), enrollmentAD("acct", exp))
	if err != nil {
		t.Fatal(err)
	}
	tok := func(exp int64, sealed []byte) string {
		return strings.Join([]string{itoa(exp), b64(sealed)}, ".")
	}
	if got, err := s.openEnrollment("acct", tok(exp, sealed)); err != nil || got != "SECRET" {
		t.Fatalf("open = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		account, token string
	}{
		"other account":  {"other", tok(exp, sealed)},
		"longer expiry":  {"acct", tok(exp+3600, sealed)},
		"no dot":         {"acct", itoa(exp) + b64(sealed)},
		"garbage":        {"acct", "x.y"},
		"empty":          {"acct", ""},
		"too long":       {"acct", tok(exp, make([]byte, maxEnrollmentLen))},
		"flipped cipher": {"acct", tok(exp, append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1))},
	} {
		if _, err := s.openEnrollment(tc.account, tc.token); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	// Expired.
	later := testService(t, now.Add(totpEnrollmentTTL+time.Second))
	later.opt.Sealer = s.opt.Sealer
	if _, err := later.openEnrollment("acct", tok(exp, sealed)); err == nil {
		t.Error("expired enrollment opened")
	}
}

func FuzzOpenEnrollment(f *testing.F) {
	now := time.Now()
	s := testService(f, now)
	exp := now.Add(totpEnrollmentTTL).Unix()
	sealed, _ := s.opt.Sealer.Seal([]byte("SECRET"), enrollmentAD("acct", exp))
	f.Add(itoa(exp) + "." + b64(sealed))
	f.Add("1.AAAA")
	f.Add("-1.")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := s.openEnrollment("acct", token)
		if err == nil && got != "SECRET" {
			t.Fatalf("opened %q to %q", token, got)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
