package federation

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/identity/federation/federationtest"
	"github.com/rampart-ml/rampart/internal/identity/jwttest"
	"github.com/rampart-ml/rampart/internal/principal"
)

const issuerName = "zitadel"

// syncBuffer collects log output from concurrent Verify calls.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testVerifier is a Verifier whose debug log is kept, so each check can
// assert that neither logs nor errors leak a token or personal data.
type testVerifier struct {
	*Verifier
	logs *syncBuffer
}

func newTestVerifier(t *testing.T, o Options) testVerifier {
	t.Helper()
	logs := new(syncBuffer)
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return testVerifier{v, logs}
}

// verify calls Verify and checks that nothing it returns or logs contains
// the token or the test user's personal data.
func (v testVerifier) verify(t *testing.T, raw string) (principal.Principal, bool, error) {
	t.Helper()
	p, ok, err := v.Verify(t.Context(), raw)
	secrets := []string{raw, federationtest.Alice.ID, federationtest.Alice.Username, federationtest.Alice.Email}
	if parts := strings.Split(raw, "."); len(parts) == 3 {
		secrets = append(secrets, parts...)
	}
	logs := v.logs.String()
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains token text or personal data %q", err, s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("log contains token text or personal data %q:\n%s", s, logs)
		}
	}
	if !ok && (err != nil || !cmp.Equal(p, principal.Principal{})) {
		t.Errorf("ok=false must come with a zero principal and nil error, got %+v, %v", p, err)
	}
	return p, ok, err
}

// wantRejected checks that Verify claimed the token and rejected it for r.
func (v testVerifier) wantRejected(t *testing.T, raw string, r Reason) {
	t.Helper()
	p, ok, err := v.verify(t, raw)
	if !ok {
		t.Fatalf("ok = false, want the configured issuer to claim the token")
	}
	rej, isRej := errors.AsType[*RejectedError](err)
	if !isRej {
		t.Fatalf("err = %v (%T), want *RejectedError with reason %q", err, err, r)
	}
	if rej.Reason != r || rej.Issuer != issuerName {
		t.Errorf("rejected by %q for %q (%v), want by %q for %q", rej.Issuer, rej.Reason, err, issuerName, r)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Errorf("a rejection must not wrap ErrUnavailable: %v", err)
	}
	if !cmp.Equal(p, principal.Principal{}) {
		t.Errorf("principal %+v returned with a rejection", p)
	}
}

func (v testVerifier) wantNotOurs(t *testing.T, raw string) {
	t.Helper()
	if p, ok, err := v.verify(t, raw); ok || err != nil {
		t.Errorf("Verify = %+v, %v, %v; want ok=false, nil error", p, ok, err)
	}
}

func (v testVerifier) wantPrincipal(t *testing.T, raw string, want principal.Principal) {
	t.Helper()
	p, ok, err := v.verify(t, raw)
	if err != nil || !ok {
		t.Fatalf("Verify: ok=%v, err=%v", ok, err)
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
}

func providerIssuer(p *federationtest.Provider) Issuer {
	return Issuer{
		Name:              issuerName,
		URL:               p.Issuer,
		Audience:          federationtest.ClientID,
		AllowInsecureHTTP: true,
	}
}

// jwtParts decodes the header and claims of a compact JWS.
func jwtParts(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		data, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// sign makes a compact JWS of claims with key, setting the header's kid.
var sign = jwttest.Sign

// providerPublicKey fetches the provider's JWKS and returns its RSA key.
func providerPublicKey(t *testing.T, p *federationtest.Provider) (*rsa.PublicKey, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.KeysURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*rsa.PublicKey); ok {
			return pub, k.KeyID
		}
	}
	t.Fatalf("no RSA key in the provider's JWKS (%d keys)", len(set.Keys))
	return nil, ""
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestVerify(t *testing.T) {
	t.Parallel()
	op := federationtest.Start(t)
	alice := federationtest.Alice
	codeToken := op.IDToken(t, alice.Username, alice.Password)
	profileToken := op.ProfileIDToken(t, alice.Username, alice.Password)
	header, claims := jwtParts(t, codeToken)
	kid, _ := header["kid"].(string)
	if header["alg"] != "RS256" || kid == "" || claims["iss"] != op.Issuer {
		t.Fatalf("unexpected ID token from the provider: header %v, iss %v", header, claims["iss"])
	}
	base := providerIssuer(op)
	v := newTestVerifier(t, Options{Issuers: []Issuer{base}})

	t.Run("code flow ID token", func(t *testing.T) {
		t.Parallel()
		// No profile claims in this token: the name falls back to sub.
		v.wantPrincipal(t, codeToken, principal.Principal{
			ID:   issuerName + ":" + alice.ID,
			Kind: principal.User,
			Name: alice.ID,
		})
	})

	t.Run("username claims", func(t *testing.T) {
		t.Parallel()
		for claim, want := range map[string]string{
			"":                   alice.Username, // default preferred_username
			"email":              alice.Email,
			"name":               alice.FirstName + " " + alice.LastName,
			"email_verified":     alice.Email, // not a string: falls back to email
			"no_such_claim_here": alice.Email,
		} {
			is := base
			is.UsernameClaim = claim
			v := newTestVerifier(t, Options{Issuers: []Issuer{is}})
			p, _, err := v.verify(t, profileToken)
			if err != nil {
				t.Fatalf("UsernameClaim %q: %v", claim, err)
			}
			if p.Name != want {
				t.Errorf("UsernameClaim %q: Name = %q, want %q", claim, p.Name, want)
			}
		}
	})

	t.Run("groups from a string array claim", func(t *testing.T) {
		t.Parallel()
		// The example OP knows no groups; its "amr" claim is ["pwd"].
		is := base
		is.GroupsClaim = "amr"
		v := newTestVerifier(t, Options{Issuers: []Issuer{is}})
		v.wantPrincipal(t, codeToken, principal.Principal{
			ID:     issuerName + ":" + alice.ID,
			Kind:   principal.User,
			Name:   alice.ID,
			Groups: []string{issuerName + ":pwd"},
		})
	})

	t.Run("groups claim that is not an array is ignored", func(t *testing.T) {
		t.Parallel()
		is := base
		is.GroupsClaim = "custom_claim" // an object
		v := newTestVerifier(t, Options{Issuers: []Issuer{is}})
		p, _, err := v.verify(t, codeToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.Groups != nil {
			t.Errorf("Groups = %q, want none", p.Groups)
		}
		if !strings.Contains(v.logs.String(), "groups claim ignored") {
			t.Errorf("no debug message about the ignored claim:\n%s", v.logs)
		}
	})

	t.Run("concurrent first use shares one discovery", func(t *testing.T) {
		t.Parallel()
		v := newTestVerifier(t, Options{Issuers: []Issuer{base}})
		var wg sync.WaitGroup
		var failures atomic.Int32
		for range 32 {
			wg.Go(func() {
				if _, ok, err := v.Verify(t.Context(), codeToken); !ok || err != nil {
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Errorf("%d of 32 concurrent verifications failed", n)
		}
		if n := strings.Count(v.logs.String(), "issuer discovered"); n != 1 {
			t.Errorf("discovery ran %d times, want once", n)
		}
	})

	t.Run("wrong audience", func(t *testing.T) {
		t.Parallel()
		is := base
		is.Audience = "another-client"
		newTestVerifier(t, Options{Issuers: []Issuer{is}}).wantRejected(t, codeToken, ReasonAudience)
	})

	t.Run("issuer not configured", func(t *testing.T) {
		t.Parallel()
		other := base
		other.URL = "https://idp.example.test/"
		newTestVerifier(t, Options{Issuers: []Issuer{other}}).wantNotOurs(t, codeToken)
		// The match is exact: no trailing slash is another issuer.
		other.URL = strings.TrimSuffix(op.Issuer, "/")
		newTestVerifier(t, Options{Issuers: []Issuer{other}}).wantNotOurs(t, codeToken)
		newTestVerifier(t, Options{}).wantNotOurs(t, codeToken)
	})

	t.Run("signed by another key with the same iss and kid", func(t *testing.T) {
		t.Parallel()
		forged := sign(t, jose.RS256, newRSAKey(t), kid, claims)
		v.wantRejected(t, forged, ReasonSignature)
	})

	t.Run("alg none", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []string{"none", "None", "NONE"} {
			h := b64JSON(t, map[string]any{"alg": alg, "typ": "JWT", "kid": kid})
			unsigned := h + "." + b64JSON(t, claims) + "."
			v.wantRejected(t, unsigned, ReasonAlgorithm)
			// With some signature bytes, in case a parser wants any.
			v.wantRejected(t, unsigned+"c2ln", ReasonAlgorithm)
		}
	})

	t.Run("HS256 with the provider's public key as secret", func(t *testing.T) {
		t.Parallel()
		pub, jwksKid := providerPublicKey(t, op)
		if jwksKid != kid {
			t.Fatalf("JWKS kid %q, token kid %q", jwksKid, kid)
		}
		pkix, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		pkcs1 := x509.MarshalPKCS1PublicKey(pub)
		secrets := map[string][]byte{
			"PKIX DER":  pkix,
			"PKIX PEM":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
			"PKCS1 DER": pkcs1,
			"PKCS1 PEM": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
			"modulus":   pub.N.Bytes(),
		}
		for name, secret := range secrets {
			t.Run(name, func(t *testing.T) {
				v.wantRejected(t, sign(t, jose.HS256, secret, kid, claims), ReasonAlgorithm)
			})
		}
	})

	t.Run("algorithm outside the allow-list", func(t *testing.T) {
		t.Parallel()
		is := base
		is.Algorithms = []string{"ES256", "EdDSA"}
		newTestVerifier(t, Options{Issuers: []Issuer{is}}).wantRejected(t, codeToken, ReasonAlgorithm)
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		later := func() time.Time { return time.Now().Add(61 * time.Minute) } // ID tokens last 1 h
		v := newTestVerifier(t, Options{Issuers: []Issuer{base}, Now: later})
		v.wantRejected(t, codeToken, ReasonExpired)
	})

	t.Run("tampered payload", func(t *testing.T) {
		t.Parallel()
		parts := strings.Split(codeToken, ".")
		for name, change := range map[string]func(map[string]any){
			"sub":       func(c map[string]any) { c["sub"] = "someone-else" },
			"exp":       func(c map[string]any) { c["exp"] = c["exp"].(float64) + 3600 },
			"aud":       func(c map[string]any) { c["aud"] = []string{"web", "rampart"} },
			"new claim": func(c map[string]any) { c["groups"] = []string{"admins"} },
		} {
			c := make(map[string]any, len(claims))
			for k, v := range claims {
				c[k] = v
			}
			change(c)
			tampered := parts[0] + "." + b64JSON(t, c) + "." + parts[2]
			t.Run(name, func(t *testing.T) { v.wantRejected(t, tampered, ReasonSignature) })
		}
		// And the signature itself.
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		v.wantRejected(t, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig), ReasonSignature)
	})

	t.Run("malformed but naming our issuer", func(t *testing.T) {
		t.Parallel()
		parts := strings.Split(codeToken, ".")
		for name, raw := range map[string]string{
			"header not base64":    "!!!." + parts[1] + "." + parts[2],
			"header not JSON":      base64.RawURLEncoding.EncodeToString([]byte("alg")) + "." + parts[1] + "." + parts[2],
			"header without alg":   b64JSON(t, map[string]any{"kid": kid}) + "." + parts[1] + "." + parts[2],
			"signature not base64": parts[0] + "." + parts[1] + ".***",
			"empty signature":      parts[0] + "." + parts[1] + ".",
		} {
			t.Run(name, func(t *testing.T) { v.wantRejected(t, raw, ReasonMalformed) })
		}
	})

	t.Run("not ours", func(t *testing.T) {
		t.Parallel()
		parts := strings.Split(codeToken, ".")
		big := make(map[string]any, len(claims)+1)
		for k, v := range claims {
			big[k] = v
		}
		big["padding"] = strings.Repeat("x", MaxTokenBytes)
		for name, raw := range map[string]string{
			"empty":             "",
			"opaque":            "rmp_0123456789abcdef",
			"two parts":         parts[0] + "." + parts[1],
			"four parts":        codeToken + ".x",
			"payload garbage":   parts[0] + ".$$$." + parts[2],
			"payload not JSON":  parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("hello")) + "." + parts[2],
			"iss not a string":  parts[0] + "." + b64JSON(t, map[string]any{"iss": 42}) + "." + parts[2],
			"no iss":            parts[0] + "." + b64JSON(t, map[string]any{"sub": "x"}) + "." + parts[2],
			"oversized":         parts[0] + "." + b64JSON(t, big) + "." + parts[2],
			"oversized padding": codeToken + strings.Repeat("A", MaxTokenBytes),
		} {
			t.Run(name, func(t *testing.T) { v.wantNotOurs(t, raw) })
		}
	})
}

func TestVerifyAfterProviderRestart(t *testing.T) {
	t.Parallel()
	op := federationtest.Start(t)
	alice := federationtest.Alice
	// A frozen clock the test moves (tokens last an hour).
	start := time.Now()
	var offset atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	aged := newTestVerifier(t, Options{Issuers: []Issuer{providerIssuer(op)}, Now: now})
	rotated := newTestVerifier(t, Options{Issuers: []Issuer{providerIssuer(op)}})

	before := op.IDToken(t, alice.Username, alice.Password)
	for _, v := range []testVerifier{aged, rotated} {
		if _, _, err := v.verify(t, before); err != nil {
			t.Fatalf("before restart: %v", err)
		}
	}
	op.Restart(t) // new signing key, the old one is gone from the JWKS
	after := op.IDToken(t, alice.Username, alice.Password)

	// A token with the new kid makes go-oidc refetch the JWKS; the old
	// kid is then unknown.
	if _, _, err := rotated.verify(t, after); err != nil {
		t.Fatalf("new token after restart: %v", err)
	}
	rotated.wantRejected(t, before, ReasonSignature)

	// Without such a token, the cached key set expires after KeySetMaxAge.
	offset.Store(int64(KeySetMaxAge))
	aged.wantRejected(t, before, ReasonSignature)
	if _, _, err := aged.verify(t, after); err != nil {
		t.Fatalf("new token after restart: %v", err)
	}
}

func TestVerifyIssuerUnavailable(t *testing.T) {
	t.Parallel()
	op := federationtest.Start(t)
	alice := federationtest.Alice
	// A frozen clock the test moves (tokens last an hour).
	start := time.Now()
	var offset atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	v := newTestVerifier(t, Options{Issuers: []Issuer{providerIssuer(op)}, Now: now})

	wantUnavailable := func(t *testing.T, raw, contains string) {
		t.Helper()
		_, ok, err := v.verify(t, raw)
		if !ok || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify: ok=%v, err=%v; want ok and ErrUnavailable", ok, err)
		}
		if _, isRej := errors.AsType[*RejectedError](err); isRej {
			t.Errorf("a technical failure must not be a *RejectedError: %v", err)
		}
		if !strings.Contains(err.Error(), contains) {
			t.Errorf("error %q does not mention %q", err, contains)
		}
	}

	first := op.IDToken(t, alice.Username, alice.Password)
	op.Stop(t)
	wantUnavailable(t, first, "discovery")

	op.Restart(t)
	token := op.IDToken(t, alice.Username, alice.Password)
	// The provider is back, but the last failure was less than 30 s ago.
	wantUnavailable(t, token, "next attempt in 30s")
	offset.Store(int64(DiscoveryRetryInterval - time.Second))
	wantUnavailable(t, token, "next attempt in 1s")
	offset.Store(int64(DiscoveryRetryInterval + time.Second))
	if _, _, err := v.verify(t, token); err != nil {
		t.Fatalf("after the retry interval: %v", err)
	}

	// Once discovered, known keys verify without the provider, even past
	// the key set's maximum age (the refresh fails and is retried later)...
	op.Stop(t)
	if _, _, err := v.verify(t, token); err != nil {
		t.Fatalf("cached key, provider down: %v", err)
	}
	offset.Add(int64(KeySetMaxAge))
	for range 2 {
		if _, _, err := v.verify(t, token); err != nil {
			t.Fatalf("cached key past its age, provider down: %v", err)
		}
	}
	// ...but a token with an unknown kid needs the JWKS: a technical
	// failure, not a bad signature.
	_, claims := jwtParts(t, token)
	wantUnavailable(t, sign(t, jose.RS256, newRSAKey(t), "rotated-key", claims), "fetch signing keys")
}

func TestVerifyRequiresExpAndSubject(t *testing.T) {
	// The example OP always sets exp and sub, so these checks run on the
	// claims directly, as Verify does once the signature is good.
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	s := &issuer{
		cfg:    Issuer{Name: "idp", Audience: "rampart"}.withDefaults(),
		now:    func() time.Time { return now },
		logger: slog.New(slog.DiscardHandler),
	}
	at := func(d time.Duration) json.RawMessage {
		return json.RawMessage(strconv.FormatInt(now.Add(d).Unix(), 10))
	}
	for _, tc := range []struct {
		name   string
		claims map[string]json.RawMessage
		want   Reason
	}{
		{"nbf ahead beyond leeway", map[string]json.RawMessage{"aud": []byte(`"rampart"`), "exp": at(time.Hour), "nbf": at(10 * time.Minute)}, ReasonNotYetValid},
		{"no exp", map[string]json.RawMessage{"aud": []byte(`["rampart"]`)}, ReasonExpired},
		{"exp past", map[string]json.RawMessage{"aud": []byte(`"rampart"`), "exp": at(-time.Second)}, ReasonExpired},
		{"no aud", map[string]json.RawMessage{"exp": at(time.Hour)}, ReasonAudience},
		{"other aud", map[string]json.RawMessage{"aud": []byte(`["web","x"]`), "exp": at(time.Hour)}, ReasonAudience},
		{"aud not strings", map[string]json.RawMessage{"aud": []byte(`[1]`), "exp": at(time.Hour)}, ReasonMalformed},
		{"nbf within leeway", map[string]json.RawMessage{"aud": []byte(`"rampart"`), "exp": at(time.Hour), "nbf": at(time.Minute)}, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.classifyClaims(tc.claims)
			if rej, ok := errors.AsType[*RejectedError](err); !ok || rej.Reason != tc.want {
				t.Errorf("classifyClaims = %v, want reason %q", err, tc.want)
			}
		})
	}

	for sub, want := range map[string]Reason{
		"":                         ReasonMissingSubject,
		strings.Repeat("s", 256):   ReasonInvalidClaim,
		"line\nbreak":              ReasonInvalidClaim,
		string([]byte{0xff, 0xfe}): ReasonInvalidClaim,
	} {
		_, err := s.principal(t.Context(), sub, nil)
		if rej, ok := errors.AsType[*RejectedError](err); !ok || rej.Reason != want {
			t.Errorf("sub %q: %v, want reason %q", sub, err, want)
		}
	}
}

func TestClaimMapping(t *testing.T) {
	t.Parallel()
	s := &issuer{
		cfg:    Issuer{Name: "idp", Audience: "rampart"}.withDefaults(),
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	many := make([]string, MaxGroups+1)
	for i := range many {
		many[i] = "g" + strconv.Itoa(i)
	}
	manyJSON, _ := json.Marshal(many)
	exactly, _ := json.Marshal(many[:MaxGroups])
	for _, tc := range []struct {
		name       string
		claims     string
		wantName   string
		wantGroups []string
	}{
		{"nothing but sub", `{}`, "sub-1", nil},
		{"preferred_username", `{"preferred_username":"bob","email":"b@x"}`, "bob", nil},
		{"email fallback", `{"preferred_username":"","email":"b@x"}`, "b@x", nil},
		{"non-string username", `{"preferred_username":["bob"]}`, "sub-1", nil},
		{"control characters in username", `{"preferred_username":"bo\u0007b"}`, "sub-1", nil},
		{"groups", `{"groups":["ops","ml"]}`, "sub-1", []string{"idp:ops", "idp:ml"}},
		{"duplicate groups", `{"groups":["ops","ops"]}`, "sub-1", []string{"idp:ops"}},
		{"prefix cannot be escaped", `{"groups":["other:admins"]}`, "sub-1", []string{"idp:other:admins"}},
		{"empty groups", `{"groups":[]}`, "sub-1", nil},
		{"null groups", `{"groups":null}`, "sub-1", nil},
		{"groups as a string", `{"groups":"ops"}`, "sub-1", nil},
		{"groups as an object", `{"groups":{"ops":true}}`, "sub-1", nil},
		{"a non-string group", `{"groups":["ops",1]}`, "sub-1", nil},
		{"a null group", `{"groups":["ops",null]}`, "sub-1", nil},
		{"an empty group", `{"groups":["ops",""]}`, "sub-1", nil},
		{"a long group", `{"groups":["` + strings.Repeat("g", MaxGroupBytes+1) + `"]}`, "sub-1", nil},
		{"a group with a newline", `{"groups":["a\nb"]}`, "sub-1", nil},
		{"too many groups", `{"groups":` + string(manyJSON) + `}`, "sub-1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var claims map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			p, err := s.principal(t.Context(), "sub-1", claims)
			if err != nil {
				t.Fatal(err)
			}
			want := principal.Principal{ID: "idp:sub-1", Kind: principal.User, Name: tc.wantName, Groups: tc.wantGroups}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("exactly the maximum of groups", func(t *testing.T) {
		p, err := s.principal(t.Context(), "sub-1", map[string]json.RawMessage{"groups": exactly})
		if err != nil || len(p.Groups) != MaxGroups {
			t.Errorf("got %d groups (%v), want %d", len(p.Groups), err, MaxGroups)
		}
	})
}

func TestIssuerValidate(t *testing.T) {
	t.Parallel()
	ok := Issuer{Name: "corp-idp", URL: "https://idp.example.test/realms/x", Audience: "rampart"}
	with := func(change func(*Issuer)) Issuer {
		i := ok
		change(&i)
		return i
	}
	for _, tc := range []struct {
		name string
		in   Issuer
		want []string // one substring per expected problem; nil: valid
	}{
		{"valid", ok, nil},
		{"valid with every option", with(func(i *Issuer) {
			i.UsernameClaim, i.GroupsClaim = "email", "roles"
			i.Algorithms = []string{"RS256", "RS512", "PS384", "ES384", "ES512", "EdDSA"}
			i.CAFile = "/etc/rampart/idp-ca.pem"
		}), nil},
		{"http refused", with(func(i *Issuer) { i.URL = "http://idp.example.test/" }), []string{"url", "must be https"}},
		{"http allowed by the flag", with(func(i *Issuer) { i.URL, i.AllowInsecureHTTP = "http://localhost:9998/", true }), nil},
		{"other scheme", with(func(i *Issuer) { i.URL = "ftp://idp.example.test/" }), []string{"url"}},
		{"no URL", with(func(i *Issuer) { i.URL = "" }), []string{"url: required"}},
		{"no host", with(func(i *Issuer) { i.URL = "https:///x" }), []string{"url", "no host"}},
		{"query", with(func(i *Issuer) { i.URL = "https://idp.example.test/?tenant=1" }), []string{"url", "query"}},
		{"credentials", with(func(i *Issuer) { i.URL = "https://u:p@idp.example.test/" }), []string{"url", "credentials"}},
		{"alg none", with(func(i *Issuer) { i.Algorithms = []string{"RS256", "none"} }), []string{"algorithms", "none"}},
		{"HS256", with(func(i *Issuer) { i.Algorithms = []string{"HS256"} }), []string{"algorithms", "HS256"}},
		{"hs512 lower case", with(func(i *Issuer) { i.Algorithms = []string{"hs512"} }), []string{"algorithms", "hs512"}},
		{"unknown algorithm", with(func(i *Issuer) { i.Algorithms = []string{"RS1"} }), []string{"algorithms", "unsupported"}},
		{"name with upper case", with(func(i *Issuer) { i.Name = "Corp" }), []string{"name"}},
		{"name with underscore", with(func(i *Issuer) { i.Name = "corp_idp" }), []string{"name"}},
		{"name with colon", with(func(i *Issuer) { i.Name = "corp:idp" }), []string{"name"}},
		{"empty name", with(func(i *Issuer) { i.Name = "" }), []string{"name"}},
		{"long name", with(func(i *Issuer) { i.Name = strings.Repeat("a", 33) }), []string{"name"}},
		{"32-character name", with(func(i *Issuer) { i.Name = strings.Repeat("a", 32) }), nil},
		{"no audience", with(func(i *Issuer) { i.Audience = " " }), []string{"audience"}},
		{"claim name with spaces", with(func(i *Issuer) { i.GroupsClaim = " groups" }), []string{"groups-claim"}},
		{"CA file for http", with(func(i *Issuer) {
			i.URL, i.AllowInsecureHTTP, i.CAFile = "http://localhost:1/", true, "ca.pem"
		}), []string{"ca-file"}},
		{"every problem at once", Issuer{Name: "X", URL: "http://x/", Algorithms: []string{"none", "HS256"}},
			[]string{"name", "url", "audience", "none", "HS256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.name == "every problem at once" {
				if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
					t.Errorf("%d problems reported, want 5: %v", n, err)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	a := Issuer{Name: "a", URL: "https://a.example.test/", Audience: "rampart"}
	b := Issuer{Name: "b", URL: "https://b.example.test/", Audience: "rampart"}

	t.Run("does not contact the issuers", func(t *testing.T) {
		closed := Issuer{Name: "down", URL: closedPortURL(t), Audience: "rampart", AllowInsecureHTTP: true}
		start := time.Now()
		if _, err := New(Options{Issuers: []Issuer{a, b, closed}}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("New took %v", d)
		}
	})

	t.Run("duplicates refused", func(t *testing.T) {
		sameName := b
		sameName.Name = "a"
		sameURL := b
		sameURL.URL = a.URL
		for _, issuers := range [][]Issuer{{a, sameName}, {a, sameURL}} {
			if _, err := New(Options{Issuers: issuers}); err == nil || !strings.Contains(err.Error(), "used by an earlier issuer") {
				t.Errorf("New(%v) = %v, want a duplicate error", issuers, err)
			}
		}
	})

	t.Run("invalid issuer refused", func(t *testing.T) {
		bad := b
		bad.Algorithms = []string{"HS256"}
		if _, err := New(Options{Issuers: []Issuer{a, bad}}); err == nil || !strings.Contains(err.Error(), "issuer 1 (b)") {
			t.Errorf("New = %v, want an error naming issuer 1 (b)", err)
		}
	})

	t.Run("CA file", func(t *testing.T) {
		dir := t.TempDir()
		notPEM := filepath.Join(dir, "not.pem")
		if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		goodPEM := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(goodPEM, selfSignedPEM(t), 0o600); err != nil {
			t.Fatal(err)
		}
		for file, wantErr := range map[string]bool{filepath.Join(dir, "missing.pem"): true, notPEM: true, goodPEM: false} {
			is := a
			is.CAFile = file
			_, err := New(Options{Issuers: []Issuer{is}})
			if (err != nil) != wantErr {
				t.Errorf("CAFile %s: err = %v, want error: %v", filepath.Base(file), err, wantErr)
			}
		}
	})
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key := newRSAKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now(),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// closedPortURL returns an http issuer URL on a loopback port nothing
// listens on.
func closedPortURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return "http://" + addr + "/"
}
