package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/authn"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/jwttest"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/pki/pkitest"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

const issuer = "https://rampart.example.test:8443"

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is an Authenticator over a real store and key ring, with a fake
// clock, a user, a disabled user, a service account and a disabled one.
type fixture struct {
	clock *clock
	st    store.Store
	keys  *signingkeys.Ring
	key   signingkeys.Key
	rev   *identity.Revocations
	dir   *identity.Directory
	a     *authn.Authenticator

	alice, dora, newbie store.Account
	robot, offline      string // service account ids
}

func newFixture(t testing.TB, o func(*authn.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: &clock{t: time.Now().Truncate(time.Second)}}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f.st = st
	master := make([]byte, secrets.KeySize)
	_, _ = rand.Read(master)
	sealer, err := secrets.New(master)
	if err != nil {
		t.Fatal(err)
	}
	// The ring runs on real time; the authenticator on the fake clock.
	if f.keys, err = signingkeys.New(st, sealer, signingkeys.Options{MaxTokenLifetime: 5 * time.Minute,
		Recorder: identitytest.NewRecorder(t, st, sealer)}); err != nil {
		t.Fatal(err)
	}
	if f.key, err = f.keys.Signing(ctx); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	f.alice = store.Account{ID: "u-alice", Name: "alice", Admin: true, CreatedAt: now}
	f.dora = store.Account{ID: "u-dora", Name: "dora", Disabled: true, CreatedAt: now}
	f.newbie = store.Account{ID: "u-newbie", Name: "newbie", MustChangePassword: true, CreatedAt: now}
	f.robot, f.offline = identity.ServiceAccountIDPrefix+"robot", identity.ServiceAccountIDPrefix+"offline"
	err = st.InTx(ctx, func(tx store.Tx) error {
		for _, a := range []store.Account{f.alice, f.dora, f.newbie} {
			a.PasswordHash = "$argon2id$unused"
			if err := tx.Accounts().CreateAccount(ctx, a); err != nil {
				return err
			}
		}
		for _, sa := range []store.ServiceAccount{
			{ID: f.robot, Name: "robot", OwnerID: f.alice.ID, CreatedAt: now},
			{ID: f.offline, Name: "offline", OwnerID: f.alice.ID, Disabled: true, CreatedAt: now},
		} {
			if err := tx.ServiceAccounts().CreateServiceAccount(ctx, sa); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.rev = identity.NewRevocations(st, 0, f.clock.Now)
	f.dir = identity.NewDirectory(st, 0, f.clock.Now)
	opt := authn.Options{Issuer: issuer, Keys: f.keys, Revocations: f.rev, Directory: f.dir, Now: f.clock.Now}
	if o != nil {
		o(&opt)
	}
	f.a = authn.New(opt)
	return f
}

// claims are valid access-token claims for sub at the fixture's time.
func (f *fixture) claims(sub string) map[string]any {
	now := f.clock.Now()
	return map[string]any{
		"iss": issuer, "sub": sub, "aud": []string{provider.APIAudience, provider.CLIClientID},
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": "sess1." + strings.ToLower(rand.Text()), "client_id": provider.CLIClientID,
	}
}

var set = jwttest.With

var sign = jwttest.Sign

// mint signs claims as the provider does.
func (f *fixture) mint(t testing.TB, claims any) string {
	t.Helper()
	return sign(t, jose.ES256, f.key.Private, f.key.ID, claims)
}

func enc(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

type tokenCase struct {
	name  string
	token string
	// ok: accepted, for the principal wantID.
	ok     bool
	wantID string
}

// tokenTable is the shared table of good and bad bearer tokens; the fuzz
// target is seeded from it.
func (f *fixture) tokenTable(t testing.TB) []tokenCase {
	t.Helper()
	now := f.clock.Now()
	base := f.claims(f.alice.ID)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pub := &f.key.Private.PublicKey
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: f.key.ID, Algorithm: "ES256", Use: "sig"})
	point, _ := pub.ECDH()

	valid := f.mint(t, base)
	p := strings.Split(valid, ".")
	skew := time.Minute
	return []tokenCase{
		{"valid user token", valid, true, f.alice.ID},
		{"valid service account token", f.mint(t, set(f.claims(f.robot), "jti", "cc."+strings.ToLower(rand.Text()))), true, f.robot},
		{"audience as a string", f.mint(t, set(base, "aud", provider.APIAudience)), true, f.alice.ID},
		{"no nbf and no iat", f.mint(t, set(base, "nbf", nil, "iat", nil)), true, f.alice.ID},
		{"nbf at the edge of the skew", f.mint(t, set(base, "nbf", now.Add(skew).Unix())), true, f.alice.ID},
		{"iat at the edge of the skew", f.mint(t, set(base, "iat", now.Add(skew).Unix())), true, f.alice.ID},
		{"expires in a second", f.mint(t, set(base, "exp", now.Add(time.Second).Unix())), true, f.alice.ID},
		{"extra claims", f.mint(t, set(base, "admin", true, "groups", []string{"root"})), true, f.alice.ID},

		{"expires now", f.mint(t, set(base, "exp", now.Unix())), false, ""},
		{"expired", f.mint(t, set(base, "exp", now.Add(-time.Hour).Unix())), false, ""},
		{"no exp", f.mint(t, set(base, "exp", nil)), false, ""},
		{"exp zero", f.mint(t, set(base, "exp", 0)), false, ""},
		{"exp negative", f.mint(t, set(base, "exp", -1)), false, ""},
		{"exp as a string", f.mint(t, set(base, "exp", fmt.Sprint(now.Add(time.Hour).Unix()))), false, ""},
		{"exp fractional", f.mint(t, set(base, "exp", float64(now.Add(time.Hour).Unix())+0.5)), false, ""},
		{"nbf beyond the skew", f.mint(t, set(base, "nbf", now.Add(skew+time.Second).Unix())), false, ""},
		{"iat beyond the skew", f.mint(t, set(base, "iat", now.Add(skew+time.Second).Unix())), false, ""},
		{"iat far in the future", f.mint(t, set(base, "iat", now.Add(24*time.Hour).Unix())), false, ""},
		{"wrong audience", f.mint(t, set(base, "aud", []string{"kubeflow"})), false, ""},
		{"only the client audience", f.mint(t, set(base, "aud", provider.CLIClientID)), false, ""},
		{"audience differs in case", f.mint(t, set(base, "aud", "Rampart")), false, ""},
		{"no audience", f.mint(t, set(base, "aud", nil)), false, ""},
		{"null audience", f.mint(t, set(base, "aud", json.RawMessage("null"))), false, ""},
		{"audience object", f.mint(t, set(base, "aud", map[string]string{"rampart": "rampart"})), false, ""},
		{"wrong issuer", f.mint(t, set(base, "iss", "https://evil.example")), false, ""},
		{"issuer with a trailing slash", f.mint(t, set(base, "iss", issuer+"/")), false, ""},
		{"issuer http", f.mint(t, set(base, "iss", strings.Replace(issuer, "https", "http", 1))), false, ""},
		{"no issuer", f.mint(t, set(base, "iss", nil)), false, ""},
		{"no jti (an ID token)", f.mint(t, set(base, "jti", nil)), false, ""},
		{"jti without a dot", f.mint(t, set(base, "jti", "abc")), false, ""},
		{"jti with empty parts", f.mint(t, set(base, "jti", ".")), false, ""},
		{"jti too long", f.mint(t, set(base, "jti", "s."+strings.Repeat("x", 200))), false, ""},
		{"no subject", f.mint(t, set(base, "sub", nil)), false, ""},
		{"unknown subject", f.mint(t, set(base, "sub", "u-nobody")), false, ""},
		{"disabled user", f.mint(t, set(base, "sub", f.dora.ID)), false, ""},
		{"disabled service account", f.mint(t, set(base, "sub", f.offline)), false, ""},
		{"unknown service account", f.mint(t, set(base, "sub", "sa-nobody")), false, ""},
		{"payload is an array", f.mint(t, []any{base}), false, ""},
		{"payload is a string", f.mint(t, "hello"), false, ""},

		{"alg none", enc(map[string]string{"alg": "none", "kid": f.key.ID}) + "." + enc(base) + ".", false, ""},
		{"alg none without kid", enc(map[string]string{"alg": "none"}) + "." + enc(base) + ".", false, ""},
		{"alg NONE", enc(map[string]string{"alg": "NONE", "kid": f.key.ID}) + "." + enc(base) + ".", false, ""},
		{"alg none with the real signature", enc(map[string]string{"alg": "none", "kid": f.key.ID}) + "." + p[1] + "." + p[2], false, ""},
		{"HS256 keyed with the public key DER", sign(t, jose.HS256, pubDER, f.key.ID, base), false, ""},
		{"HS256 keyed with the public key PEM", sign(t, jose.HS256, pubPEM, f.key.ID, base), false, ""},
		{"HS256 keyed with the public JWK", sign(t, jose.HS256, pubJWK, f.key.ID, base), false, ""},
		{"HS256 keyed with the public point", sign(t, jose.HS256, point.Bytes(), f.key.ID, base), false, ""},
		{"HS256 keyed with the kid", sign(t, jose.HS256, []byte(f.key.ID), f.key.ID, base), false, ""},
		{"ES384 with the real kid", sign(t, jose.ES384, p384, f.key.ID, base), false, ""},
		{"ES256 header relabelled ES384", enc(map[string]string{"alg": "ES384", "kid": f.key.ID}) + "." + p[1] + "." + p[2], false, ""},
		{"unknown kid", sign(t, jose.ES256, other, "no-such-key", base), false, ""},
		{"real kid, other key", sign(t, jose.ES256, other, f.key.ID, base), false, ""},
		{"no kid, other key", sign(t, jose.ES256, other, "", base), false, ""},
		{"no kid, real key", sign(t, jose.ES256, f.key.Private, "", base), false, ""},
		{"embedded jwk header", embeddedJWK(t, other, base), false, ""},

		{"tampered subject", p[0] + "." + enc(set(base, "sub", f.dora.ID)) + "." + p[2], false, ""},
		{"tampered expiry", p[0] + "." + enc(set(base, "exp", now.Add(48*time.Hour).Unix())) + "." + p[2], false, ""},
		{"tampered header", enc(map[string]string{"alg": "ES256", "kid": f.key.ID, "typ": "at+jwt"}) + "." + p[1] + "." + p[2], false, ""},
		{"signature flipped", p[0] + "." + p[1] + "." + flipSignature(p[2]), false, ""},
		{"signature empty", p[0] + "." + p[1] + ".", false, ""},
		{"signature truncated", p[0] + "." + p[1] + "." + p[2][:40], false, ""},
		{"signature doubled", p[0] + "." + p[1] + "." + p[2] + p[2], false, ""},
		{"two parts", p[0] + "." + p[1], false, ""},
		{"four parts", valid + "." + p[2], false, ""},
		{"padding in base64", p[0] + "==." + p[1] + "." + p[2], false, ""},
		{"JSON serialization, no signatures", `{"payload":"` + p[1] + `","signatures":[]}`, false, ""},
		{"JSON serialization, two signatures", `{"payload":"` + p[1] + `","signatures":[{"protected":"` + p[0] + `","signature":"` + p[2] + `"},{"protected":"` + p[0] + `","signature":"` + p[2] + `"}]}`, false, ""},
		{"empty", "", false, ""},
		{"dots", "..", false, ""},
		{"garbage", "not a token", false, ""},
		{"binary", "\x00\xff\xfe.\x00.\x00", false, ""},
		{"JSON", "{}", false, ""},
		{"deeply nested JSON", strings.Repeat("[", 10_000), false, ""},
	}
}

func embeddedJWK(t testing.TB, key *ecdsa.PrivateKey, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{EmbedJWK: true}))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// flipSignature changes a character in the middle of a base64url
// signature (the last one may carry only padding bits, which decoders
// ignore).
func flipSignature(s string) string {
	b := []byte(s)
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return string(b)
}

// isRefusal reports whether err is a 401 invalid_token refusal.
func isRefusal(err error) bool {
	var he *httpapi.HTTPError
	return errors.As(err, &he) && he.Status == http.StatusUnauthorized && he.Code == "invalid_token"
}

func TestVerifyToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, c := range f.tokenTable(t) {
		s, err := f.a.VerifyToken(context.Background(), c.token)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.ok && s.Principal.ID != c.wantID:
			t.Errorf("%s: principal %q, want %q", c.name, s.Principal.ID, c.wantID)
		case !c.ok && err == nil:
			t.Errorf("%s: accepted as %+v", c.name, s.Principal)
		case !c.ok && !isRefusal(err):
			t.Errorf("%s: %v, want a 401 invalid_token refusal", c.name, err)
		}
	}
}

func TestVerifyTokenPrincipal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s, err := f.a.VerifyToken(context.Background(), f.mint(t, f.claims(f.alice.ID)))
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Subject{Principal: principal.Principal{ID: f.alice.ID, Kind: principal.User, Name: "alice", Admin: true}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
	s, err = f.a.VerifyToken(context.Background(), f.mint(t, set(f.claims(f.robot), "jti", "cc.x")))
	if err != nil {
		t.Fatal(err)
	}
	want = identity.Subject{Principal: principal.Principal{ID: f.robot, Kind: principal.ServiceAccount, Name: "robot"}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("service account subject (-want +got):\n%s", diff)
	}
}

func TestVerifyTokenExpiresWithTheClock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tok := f.mint(t, set(f.claims(f.alice.ID), "exp", f.clock.Now().Add(time.Minute).Unix()))
	if _, err := f.a.VerifyToken(context.Background(), tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	f.clock.Add(59 * time.Second)
	if _, err := f.a.VerifyToken(context.Background(), tok); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	f.clock.Add(time.Second)
	if _, err := f.a.VerifyToken(context.Background(), tok); !isRefusal(err) {
		t.Errorf("at expiry: %v, want refused", err)
	}

	// A token from a replica whose clock runs ahead: valid once our clock
	// is within the skew of its nbf.
	ahead := f.mint(t, set(f.claims(f.alice.ID), "nbf", f.clock.Now().Add(90*time.Second).Unix()))
	if _, err := f.a.VerifyToken(context.Background(), ahead); !isRefusal(err) {
		t.Errorf("nbf 90s ahead: %v, want refused", err)
	}
	f.clock.Add(30 * time.Second)
	if _, err := f.a.VerifyToken(context.Background(), ahead); err != nil {
		t.Errorf("nbf 60s ahead: %v", err)
	}
}

func TestVerifyTokenRevocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	exp := f.clock.Now().Add(time.Hour)
	a := set(f.claims(f.alice.ID), "jti", "sessA.one")
	b := set(f.claims(f.alice.ID), "jti", "sessA.two")
	c := set(f.claims(f.alice.ID), "jti", "sessB.one")
	cc := set(f.claims(f.robot), "jti", "cc.one")
	toks := map[string]string{"a": f.mint(t, a), "b": f.mint(t, b), "c": f.mint(t, c), "cc": f.mint(t, cc)}
	check := func(when string, want map[string]bool) {
		t.Helper()
		for name, ok := range want {
			_, err := f.a.VerifyToken(context.Background(), toks[name])
			if ok && err != nil {
				t.Errorf("%s: token %s refused: %v", when, name, err)
			}
			if !ok && !isRefusal(err) {
				t.Errorf("%s: token %s: %v, want refused", when, name, err)
			}
		}
	}
	check("before", map[string]bool{"a": true, "b": true, "c": true, "cc": true})
	f.rev.AddToken(store.RevokedToken{ID: "sessA.one", ExpiresAt: exp})
	check("one token revoked", map[string]bool{"a": false, "b": true, "c": true, "cc": true})
	f.rev.AddSession(store.RevokedToken{ID: "sessA", ExpiresAt: exp})
	check("session revoked", map[string]bool{"a": false, "b": false, "c": true, "cc": true})
	// "cc" is not a session: revoking a session named "cc" must not
	// revoke every standalone token.
	f.rev.AddSession(store.RevokedToken{ID: "cc", ExpiresAt: exp})
	check("session cc revoked", map[string]bool{"c": true, "cc": true})
	f.rev.AddToken(store.RevokedToken{ID: "cc.one", ExpiresAt: exp})
	check("standalone token revoked", map[string]bool{"c": true, "cc": false})
}

// Disabling or deleting the subject refuses its live tokens at once (the
// writer invalidates the directory entry, as account management does).
func TestVerifyTokenSubjectChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	user := f.mint(t, f.claims(f.alice.ID))
	robot := f.mint(t, set(f.claims(f.robot), "jti", "cc.r"))
	for _, tok := range []string{user, robot} {
		if _, err := f.a.VerifyToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	change := func(fn func(tx store.Tx) error, id string) {
		t.Helper()
		if err := f.st.InTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
		f.dir.Invalidate(id)
	}
	change(func(tx store.Tx) error {
		sa, err := tx.ServiceAccounts().ServiceAccountByID(ctx, f.robot)
		if err != nil {
			return err
		}
		sa.ExpiresAt = f.clock.Now()
		return tx.ServiceAccounts().UpdateServiceAccount(ctx, sa)
	}, f.robot)
	if _, err := f.a.VerifyToken(ctx, robot); !isRefusal(err) {
		t.Errorf("expired service account: %v, want refused", err)
	}
	change(func(tx store.Tx) error {
		a, err := tx.Accounts().AccountByID(ctx, f.alice.ID)
		if err != nil {
			return err
		}
		a.Disabled = true
		return tx.Accounts().UpdateAccount(ctx, a)
	}, f.alice.ID)
	if _, err := f.a.VerifyToken(ctx, user); !isRefusal(err) {
		t.Errorf("disabled user: %v, want refused", err)
	}
	change(func(tx store.Tx) error {
		if err := tx.ServiceAccounts().DeleteServiceAccount(ctx, f.robot); err != nil {
			return err
		}
		if err := tx.ServiceAccounts().DeleteServiceAccount(ctx, f.offline); err != nil {
			return err
		}
		return tx.Accounts().DeleteAccount(ctx, f.alice.ID)
	}, f.alice.ID)
	if _, err := f.a.VerifyToken(ctx, user); !isRefusal(err) {
		t.Errorf("deleted user: %v, want refused", err)
	}
}

// A key created by a rotation after the authenticator loaded the set is
// found at once, and the retired key still verifies its tokens.
func TestVerifyTokenKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.a.VerifyToken(ctx, f.mint(t, f.claims(f.alice.ID))); err != nil {
		t.Fatal(err)
	}
	next, err := f.keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, next.Private, next.ID, f.claims(f.alice.ID))
	if _, err := f.a.VerifyToken(ctx, tok); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
	// The retired key still verifies its tokens.
	if _, err := f.a.VerifyToken(ctx, f.mint(t, f.claims(f.alice.ID))); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
}

type fakeFederation struct {
	p     principal.Principal
	ok    bool
	err   error
	calls int
}

func (f *fakeFederation) Verify(context.Context, string) (principal.Principal, bool, error) {
	f.calls++
	return f.p, f.ok, f.err
}

var errRejected = errors.New("token rejected by the external issuer")

func TestVerifyTokenFederated(t *testing.T) {
	t.Parallel()
	fed := &fakeFederation{}
	f := newFixture(t, func(o *authn.Options) {
		o.Federated = fed
		o.Rejected = func(err error) bool { return errors.Is(err, errRejected) }
	})
	ctx := context.Background()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	external := sign(t, jose.ES256, other, "external-kid", map[string]any{"iss": "https://idp.example", "sub": "x", "exp": f.clock.Now().Add(time.Hour).Unix()})

	fed.p, fed.ok = principal.Principal{ID: "idp:x", Kind: principal.User}, true
	s, err := f.a.VerifyToken(ctx, external)
	if err != nil || s.Principal.ID != "idp:x" {
		t.Errorf("federated token: %+v, %v", s, err)
	}
	fed.ok = false
	if _, err := f.a.VerifyToken(ctx, external); !isRefusal(err) {
		t.Errorf("federation says not mine: %v, want refused", err)
	}
	fed.err = errRejected
	if _, err := f.a.VerifyToken(ctx, external); !isRefusal(err) {
		t.Errorf("federation rejects: %v, want refused", err)
	}
	fed.err = errors.New("issuer unreachable")
	var he *httpapi.HTTPError
	if _, err := f.a.VerifyToken(ctx, external); err == nil || errors.As(err, &he) {
		t.Errorf("federation technical failure: %v, want a plain error (503)", err)
	}

	// Rampart's own tokens never go to the federated verifier, valid or not.
	fed.calls, fed.err, fed.ok = 0, nil, true
	if _, err := f.a.VerifyToken(ctx, f.mint(t, f.claims(f.alice.ID))); err != nil {
		t.Error(err)
	}
	if _, err := f.a.VerifyToken(ctx, f.mint(t, set(f.claims(f.alice.ID), "iss", "https://idp.example"))); !isRefusal(err) {
		t.Errorf("Rampart-signed token with an external issuer: %v, want refused", err)
	}
	if fed.calls != 0 {
		t.Errorf("federated verifier called %d times for Rampart-signed tokens", fed.calls)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	user := f.mint(t, f.claims(f.alice.ID))
	newbie := f.mint(t, f.claims(f.newbie.ID))
	cases := []struct {
		name, header, pattern string
		wantOK                bool
		wantStatus            int // of a refusal; 0 for none
	}{
		{"valid", "Bearer " + user, "GET /api/v1/models", true, 0},
		{"lower-case scheme", "bearer " + user, "GET /api/v1/models", true, 0},
		{"no header", "", "GET /api/v1/models", false, 0},
		{"basic", "Basic YWxpY2U6cHc=", "GET /api/v1/models", false, http.StatusUnauthorized},
		{"scheme only", "Bearer", "GET /api/v1/models", false, http.StatusUnauthorized},
		{"token only", user, "GET /api/v1/models", false, http.StatusUnauthorized},
		{"too large", "Bearer " + strings.Repeat("a", authn.MaxTokenBytes+1), "GET /api/v1/models", false, http.StatusUnauthorized},
		{"forged", "Bearer " + user[:len(user)-2] + "AA", "GET /api/v1/models", false, http.StatusUnauthorized},
		{"must change password: me", "Bearer " + newbie, "GET /api/v1/me", true, 0},
		{"must change password: change", "Bearer " + newbie, "POST /api/v1/me/password", true, 0},
		{"must change password: elsewhere", "Bearer " + newbie, "GET /api/v1/models", false, http.StatusForbidden},
		{"must change password: unmatched", "Bearer " + newbie, "", false, http.StatusForbidden},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Pattern = c.pattern
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		p, ok, err := f.a.Authenticate(r)
		var he *httpapi.HTTPError
		switch {
		case ok != c.wantOK:
			t.Errorf("%s: ok = %v, err %v; want %v", c.name, ok, err, c.wantOK)
		case c.wantStatus == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantStatus != 0 && (!errors.As(err, &he) || he.Status != c.wantStatus):
			t.Errorf("%s: %v, want status %d", c.name, err, c.wantStatus)
		case ok && p.ID == "":
			t.Errorf("%s: empty principal", c.name)
		}
	}
}

// Client certificates over a real TLS handshake: the common name is the
// service account id.
func TestAuthenticateClientCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *authn.Options) { o.ClientCerts = true })
	ca := pkitest.NewCA(t, "clients")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := f.a.Authenticate(r)
		var he *httpapi.HTTPError
		switch {
		case errors.As(err, &he):
			w.WriteHeader(he.Status)
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
		case !ok:
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = fmt.Fprint(w, p.ID)
		}
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	call := func(cn string, header string) (int, string) {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cn != "" {
			pair := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			tr.TLSClientConfig.Certificates = []tls.Certificate{pair.TLS(t)}
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if st, body := call(f.robot, ""); st != http.StatusOK || body != f.robot {
		t.Errorf("service account certificate: %d %q", st, body)
	}
	if st, _ := call("", ""); st != http.StatusNoContent {
		t.Errorf("no certificate: %d, want not-mine", st)
	}
	for _, cn := range []string{"alice", f.alice.ID, f.offline, "sa-nobody"} {
		if st, _ := call(cn, ""); st != http.StatusUnauthorized {
			t.Errorf("certificate for %q: %d, want 401", cn, st)
		}
	}
	// A bearer token takes precedence over the certificate.
	if st, body := call(f.robot, "Bearer "+f.mint(t, f.claims(f.alice.ID))); st != http.StatusOK || body != f.alice.ID {
		t.Errorf("token and certificate: %d %q, want the token's subject", st, body)
	}

	// Certificates are ignored when not enabled.
	off := newFixture(t, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	leaf, _ := x509.ParseCertificate(pemBlock(t, ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: f.robot}}).Cert))
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}
	if _, ok, err := off.a.Authenticate(r); ok || err != nil {
		t.Errorf("client certificates disabled: ok=%v err=%v", ok, err)
	}
	// Presented but unverified certificates are not identities.
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	if _, ok, err := f.a.Authenticate(r); ok || err != nil {
		t.Errorf("unverified certificate: ok=%v err=%v", ok, err)
	}
}

func pemBlock(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}
