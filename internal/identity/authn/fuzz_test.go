package authn_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/identity/provider"
)

// FuzzVerifyToken feeds arbitrary strings, seeded with the good and bad
// tokens of TestVerifyToken, to Authenticator.VerifyToken. It must never
// panic, every failure must be a 401 refusal that does not echo the token,
// and it may accept a string only if an independent check agrees: an
// ES256 signature by the real key over claims that are valid now.
func FuzzVerifyToken(f *testing.F) {
	fx := newFixture(f, nil)
	for _, c := range fx.tokenTable(f) {
		f.Add(c.token)
	}
	pub := &fx.key.Private.PublicKey
	active := []string{fx.alice.ID, fx.newbie.ID, fx.robot}
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, raw string) {
		s, err := fx.a.VerifyToken(ctx, raw)
		if err != nil {
			if !isRefusal(err) {
				t.Fatalf("error is not a 401 refusal: %v", err)
			}
			if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
				t.Fatalf("refusal echoes the token: %v", err)
			}
			return
		}
		jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("accepted a token that does not parse as ES256: %v", err)
		}
		if len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != fx.key.ID {
			t.Fatalf("accepted a token with %d signatures / kid %q", len(jws.Signatures), jws.Signatures[0].Header.KeyID)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			t.Fatalf("accepted a token the real key did not sign: %v", err)
		}
		var c struct {
			Iss string          `json:"iss"`
			Sub string          `json:"sub"`
			Aud json.RawMessage `json:"aud"`
			Exp int64           `json:"exp"`
			Nbf int64           `json:"nbf"`
			Iat int64           `json:"iat"`
			Jti string          `json:"jti"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("accepted claims that are not a JSON object: %v", err)
		}
		var aud []string
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			aud = []string{one}
		} else if err := json.Unmarshal(c.Aud, &aud); err != nil {
			t.Fatalf("accepted a malformed audience %s", c.Aud)
		}
		now := fx.clock.Now()
		skewed := now.Add(time.Minute).Unix()
		switch {
		case c.Iss != issuer:
			t.Fatalf("accepted issuer %q", c.Iss)
		case !slices.Contains(aud, provider.APIAudience):
			t.Fatalf("accepted audience %v", aud)
		case c.Exp <= now.Unix():
			t.Fatalf("accepted exp %d at %d", c.Exp, now.Unix())
		case c.Nbf > skewed || c.Iat > skewed:
			t.Fatalf("accepted nbf %d / iat %d at %d", c.Nbf, c.Iat, now.Unix())
		case !provider.ValidTokenID(c.Jti):
			t.Fatalf("accepted jti %q", c.Jti)
		case c.Sub != s.Principal.ID || !slices.Contains(active, c.Sub):
			t.Fatalf("accepted sub %q as principal %q", c.Sub, s.Principal.ID)
		}
	})
}
