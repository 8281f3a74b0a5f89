package authn

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/jwttest"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// BenchmarkTokenVerify compares the middleware's full verification of a
// Rampart access token (parse, key lookup, ES256 signature, claims,
// revocation set, account lookup — warm caches, as in steady state) with a
// bare go-jose signature verification of the same token, the baseline the
// identity issue sets (goal: at most 1.2×), on a token's first use and
// when its verified signature is remembered (every later use).
func BenchmarkTokenVerify(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sealer, err := secrets.New(make([]byte, secrets.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	ring, err := signingkeys.New(st, sealer, signingkeys.Options{MaxTokenLifetime: 5 * time.Minute,
		Recorder: identitytest.NewRecorder(b, st, sealer)})
	if err != nil {
		b.Fatal(err)
	}
	key, err := ring.Signing(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const issuer, subject = "https://rampart.example", "0123456789abcdef0123456789abcdef"
	err = st.InTx(ctx, func(tx store.Tx) error {
		return tx.Accounts().CreateAccount(ctx, store.Account{ID: subject, Name: "bench", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", CreatedAt: time.Now()})
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	raw := jwttest.Sign(b, jose.ES256, key.Private, key.ID, map[string]any{
		"iss": issuer, "sub": subject, "aud": []string{provider.APIAudience}, "client_id": provider.CLIClientID,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "jti": "SESSIONID.RANDOMPART",
	})

	b.Run("bare", func(b *testing.B) {
		pub := &key.Private.PublicKey
		for b.Loop() {
			sig, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sig.Verify(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"middleware", false}, {"middleware-cached", true}} {
		b.Run(bc.name, func(b *testing.B) {
			a := New(Options{
				Issuer: issuer, Keys: ring,
				Revocations: identity.NewRevocations(st, time.Hour, nil),
				Directory:   identity.NewDirectory(st, time.Hour, nil),
			})
			if _, err := a.VerifyToken(ctx, raw); err != nil { // warm the caches
				b.Fatal(err)
			}
			for b.Loop() {
				if !bc.cached {
					// A token's first use: the signature is checked.
					a.verified = verifiedCache{}
				}
				if _, err := a.VerifyToken(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
