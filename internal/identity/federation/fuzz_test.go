package federation

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/principal"
)

// FuzzVerify feeds arbitrary strings to a Verifier whose one issuer is
// unreachable (its discovery points to a closed port): Verify must never
// panic, never claim a token it cannot parse, never accept one, and never
// echo the token in an error.
func FuzzVerify(f *testing.F) {
	iss := closedPortURL(f)
	v, err := New(Options{
		Issuers:    []Issuer{{Name: "idp", URL: iss, Audience: "rampart", AllowInsecureHTTP: true}},
		HTTPClient: &http.Client{Timeout: time.Second},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}

	enc := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(data)
	}
	sig := make([]byte, 256)
	if _, err := rand.Read(sig); err != nil {
		f.Fatal(err)
	}
	signature := base64.RawURLEncoding.EncodeToString(sig)
	claims := map[string]any{
		"iss": iss, "sub": "user-1", "aud": []string{"rampart"},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		"preferred_username": "user", "groups": []string{"ops"},
	}
	rs256 := enc(map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	for _, seed := range []string{
		rs256 + "." + enc(claims) + "." + signature, // valid-looking
		enc(map[string]any{"alg": "none"}) + "." + enc(claims) + ".",
		enc(map[string]any{"alg": "HS256"}) + "." + enc(claims) + "." + signature[:43],
		rs256 + "." + enc(map[string]any{"iss": iss}) + "." + signature,
		rs256 + "." + enc(map[string]any{"iss": "https://elsewhere.example.test/"}) + "." + signature,
		rs256 + "." + enc(map[string]any{"iss": 1}) + "." + signature,
		rs256 + "." + enc(map[string]any{"iss": iss, "aud": map[string]any{}, "exp": "soon"}) + "." + signature,
		"!!." + enc(claims) + ".!!",
		"", ".", "..", "...", "a.b.c", "e30.e30.e30", "null.null.null",
		"eyJhbGciOiJSUzI1NiJ9", "Bearer abc", "\x00\xff.\x00.",
		strings.Repeat("A", MaxTokenBytes+1),
		rs256 + "." + enc(claims) + "." + strings.Repeat("A", MaxTokenBytes),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		p, ok, err := v.Verify(t.Context(), raw)
		if !ok {
			if err != nil || !cmp.Equal(p, principal.Principal{}) {
				t.Fatalf("ok=false with principal %+v and error %v", p, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("accepted a token although the issuer is unreachable: %+v", p)
		}
		if _, isRej := errors.AsType[*RejectedError](err); !isRej && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("error is neither a rejection nor ErrUnavailable: %v", err)
		}
		if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error contains the token: %v", err)
		}
	})
}

// FuzzClaimMapping maps arbitrary claim sets, as Verify does after a good
// signature: no panic, the id and groups always carry the issuer's prefix,
// bounds hold and admin is never granted.
func FuzzClaimMapping(f *testing.F) {
	s := &issuer{
		cfg:    Issuer{Name: "idp", Audience: "rampart"}.withDefaults(),
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	for _, seed := range []string{
		`{"sub":"u","preferred_username":"bob","groups":["a","b","a"]}`,
		`{"sub":"u","groups":"a"}`, `{"sub":"u","groups":[1,null,{}]}`,
		`{"sub":"","email":"x@y"}`, `{"sub":"a\u0000b"}`, `{"aud":"rampart","exp":1,"nbf":99999999999}`,
		`{"aud":[],"exp":1e300,"nbf":-1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var claims map[string]json.RawMessage
		if json.Unmarshal([]byte(payload), &claims) != nil {
			return
		}
		if err := s.classifyClaims(claims); err == nil {
			t.Fatal("classifyClaims returned nil: it must always name a reason")
		}
		var sub string
		_ = json.Unmarshal(claims["sub"], &sub)
		p, err := s.principal(t.Context(), sub, claims)
		if err != nil {
			if _, ok := errors.AsType[*RejectedError](err); !ok {
				t.Fatalf("principal: %v is not a *RejectedError", err)
			}
			return
		}
		if p.ID != "idp:"+sub || p.Kind != principal.User || p.Admin || p.Name == "" {
			t.Fatalf("bad principal %+v", p)
		}
		if len(p.Groups) > MaxGroups {
			t.Fatalf("%d groups", len(p.Groups))
		}
		for _, g := range p.Groups {
			if !strings.HasPrefix(g, "idp:") || len(g) > len("idp:")+MaxGroupBytes {
				t.Fatalf("bad group %q", g)
			}
		}
	})
}
