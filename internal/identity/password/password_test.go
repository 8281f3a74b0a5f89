package password

import (
	"errors"
	"strings"
	"testing"
)

// cheap keeps tests fast; the algorithm is the same.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h, err := Hash("correct horse battery staple", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %q", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"", false},
	} {
		ok, err := Verify(tc.pw, h)
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	h2, _ := Hash("correct horse battery staple", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyNormalisesUnicode(t *testing.T) {
	t.Parallel()
	// U+FB01 (ligature fi) and "fi" are NFKC-equivalent.
	h, _ := Hash("\ufb01nally a long passphrase", cheap)
	if ok, _ := Verify("finally a long passphrase", h); !ok {
		t.Error("NFKC-equivalent password did not verify")
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"",
		"plain",
		"$2a$10$bcrypt-is-not-accepted",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	} {
		if _, err := Verify("whatever", h); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(_, %q) err = %v, want ErrMalformedHash", h, err)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	h, _ := Hash("a long enough passphrase", cheap)
	if NeedsRehash(h, cheap) {
		t.Error("same params: rehash requested")
	}
	if !NeedsRehash(h, DefaultParams) {
		t.Error("different params: no rehash requested")
	}
	if !NeedsRehash("garbage", cheap) {
		t.Error("malformed hash: no rehash requested")
	}
}

// FuzzDecode exercises the hash parser; it must never panic and must keep
// parameters within the bounds that cap one verification's cost.
func FuzzDecode(f *testing.F) {
	h, _ := Hash("seed password value", cheap)
	f.Add(h)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5")
	f.Fuzz(func(t *testing.T, encoded string) {
		p, _, key, err := decode(encoded)
		if err != nil {
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.Time > maxTime || len(key) > maxKeyLen {
			t.Fatalf("accepted out-of-range parameters %+v", p)
		}
	})
}
