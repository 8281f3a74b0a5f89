package modelsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// writeModel creates a model directory from name → content.
func writeModel(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my-model")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testModel = map[string]string{
	"model.onnx":        "weights",
	"a.b":               "dot",
	"a/b":               "nested",
	"a-b":               "dash",
	"config/labels.txt": "cat\ndog\n",
}

func keys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	out := map[string]crypto.Signer{}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out["Ed25519"] = ed
	return out
}

func trust(t *testing.T, pubs ...crypto.PublicKey) TrustedKeys {
	t.Helper()
	ks, err := KeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func signDir(t *testing.T, dir string, key crypto.Signer) []byte {
	t.Helper()
	m, err := DigestDirectory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestDigestDirectory computes the expected digests independently.
func TestDigestDirectory(t *testing.T) {
	t.Parallel()
	files := map[string]string{"model.sig": "ignored", ".git/HEAD": "ignored"}
	for k, v := range testModel {
		files[k] = v
	}
	dir := writeModel(t, files)
	m, err := DigestDirectory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// By components: ["a","b"] < ["a-b"] < ["a.b"], though as strings "a-b" < "a.b" < "a/b".
	wantOrder := []string{"a/b", "a-b", "a.b", "config/labels.txt", "model.onnx"}
	var got []string
	root := sha256.New()
	for i, f := range m.Files {
		got = append(got, f.Name)
		if f.Digest != sha256.Sum256([]byte(testModel[f.Name])) {
			t.Errorf("digest of %s wrong", f.Name)
		}
		if i < len(wantOrder) {
			d := sha256.Sum256([]byte(testModel[wantOrder[i]]))
			root.Write(d[:])
		}
	}
	if diff := cmp.Diff(wantOrder, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if want := root.Sum(nil); string(want) != string(func() []byte { d := m.SubjectDigest(); return d[:] }()) {
		t.Errorf("subject digest wrong")
	}
	if m.ModelName != "my-model" {
		t.Errorf("model name %q", m.ModelName)
	}
	if diff := cmp.Diff([]string{".git"}, m.Ignored); diff != "" {
		t.Errorf("ignored (-want +got):\n%s", diff)
	}
}

func TestComparePaths(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"a/b", "a.b", -1}, {"a/b", "a-b", -1}, {"a", "a/b", -1}, {"a/b", "a/b", 0},
		{"b", "a/z", 1}, {"d0/f00", "f3", -1}, {"Z", "a", -1},
	} {
		if got := comparePaths(c.a, c.b); got != c.want {
			t.Errorf("comparePaths(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestDigestRefusesSymlinksAndSpecials(t *testing.T) {
	t.Parallel()
	dir := writeModel(t, map[string]string{"model.onnx": "x"})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := DigestDirectory(dir, Options{}); !errors.Is(err, ErrSymlink) {
		t.Errorf("symlink: err = %v, want ErrSymlink", err)
	}
	empty := t.TempDir()
	if _, err := DigestDirectory(empty, Options{}); !errors.Is(err, ErrEmptyModel) {
		t.Errorf("empty: err = %v", err)
	}
	many := writeModel(t, map[string]string{"a": "1", "b": "2", "c": "3"})
	if _, err := DigestDirectory(many, Options{MaxFiles: 2}); !errors.Is(err, ErrTooManyFiles) {
		t.Errorf("too many: err = %v", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	for name, key := range keys(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := writeModel(t, testModel)
			sig := signDir(t, dir, key)
			res, err := Verify(dir, sig, trust(t, key.Public()))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			id, _ := KeyID(key.Public())
			if res.KeyID != id || res.Hint != id || len(res.Files) != len(testModel) || res.ModelName != "my-model" {
				t.Errorf("result = %+v", res)
			}
			// Writing model.sig into the directory changes nothing.
			if err := os.WriteFile(filepath.Join(dir, SignatureFile), sig, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(dir, sig, trust(t, key.Public())); err != nil {
				t.Fatalf("Verify with model.sig present: %v", err)
			}
		})
	}
}

// TestGoldenReference verifies a bundle written by the reference tool
// (model_signing v1.1.0 sign key, P-384) and rebuilds its payload byte for
// byte.
func TestGoldenReference(t *testing.T) {
	t.Parallel()
	sig, err := os.ReadFile("testdata/v1.1.0-elliptic-key.sig")
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile("testdata/v1.1.0-elliptic-key.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKeyPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "v1.1.0-elliptic-key")
	for name, content := range map[string]string{"signme-1": "signme-1\n", "signme-2": "signme-2", "ignore-me": "ignore-me\n"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Verify(dir, sig, trust(t, pub))
	if err != nil {
		t.Fatalf("Verify(reference bundle): %v", err)
	}
	if res.KeyID != "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e" {
		t.Errorf("key id %s", res.KeyID)
	}
	if diff := cmp.Diff([]string{"ignore-me"}, res.Ignored); diff != "" {
		t.Errorf("ignored (-want +got):\n%s", diff)
	}
	// Our statement for the same manifest is the reference's, byte for byte.
	var b struct {
		DSSEEnvelope struct {
			Payload []byte `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(sig, &b); err != nil {
		t.Fatal(err)
	}
	m, err := DigestDirectory(dir, Options{IgnorePaths: []string{".git", "model.sig", "ignore-me", ".gitattributes", ".gitignore", ".github"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := statementPayload(m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(b.DSSEEnvelope.Payload), string(got)); diff != "" {
		t.Errorf("payload differs from the reference (-ref +ours):\n%s", diff)
	}
	// The bundle layout around it, too (signatures differ: ECDSA is randomized).
	ours, err := Sign(m, mustP384(t))
	if err != nil {
		t.Fatal(err)
	}
	mask := func(s []byte) string {
		var v map[string]any
		if err := json.Unmarshal(s, &v); err != nil {
			t.Fatal(err)
		}
		v["verificationMaterial"].(map[string]any)["publicKey"] = "K"
		v["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)["sig"] = "S"
		out, _ := json.Marshal(v)
		return string(out)
	}
	if diff := cmp.Diff(mask(sig), mask(ours)); diff != "" {
		t.Errorf("bundle differs from the reference (-ref +ours):\n%s", diff)
	}
}

func mustP384(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyBadInput(t *testing.T) {
	t.Parallel()
	key := mustP384(t)
	other := mustP384(t)
	base := writeModel(t, testModel)
	good := signDir(t, base, key)
	otherDir := writeModel(t, map[string]string{"different.onnx": "other"})
	forOther := signDir(t, otherDir, key)
	old, err := os.ReadFile("testdata/v1.0.1-elliptic-key.sig")
	if err != nil {
		t.Fatal(err)
	}
	// A bundle whose hint names `other` but whose signature is by `key`.
	otherID, _ := KeyID(other.Public())
	keyID, _ := KeyID(key.Public())
	wrongHint := []byte(strings.Replace(string(good), keyID, otherID, 1))
	tamperedSig := tamper(t, good, func(b map[string]any) {
		s := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
		raw[len(raw)-1] ^= 1
		s["sig"] = base64.StdEncoding.EncodeToString(raw)
	})
	tamperedPayload := tamper(t, good, func(b map[string]any) {
		e := b["dsseEnvelope"].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
		e["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), "my-model", "my-modeX", 1)))
	})
	certificate := tamper(t, good, func(b map[string]any) {
		b["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "AAAA"}}
	})
	oldMedia := tamper(t, good, func(b map[string]any) { b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1" })

	for _, c := range []struct {
		name  string
		edit  func(dir string) // changes to the model directory
		sig   []byte
		trust []crypto.PublicKey
		want  error
		says  string
	}{
		{name: "absent", sig: nil, trust: []crypto.PublicKey{key.Public()}, want: ErrUnsignedOrMalformed},
		{name: "not JSON", sig: []byte("{nope"), trust: []crypto.PublicKey{key.Public()}, want: ErrUnsignedOrMalformed},
		{name: "truncated", sig: good[:100], trust: []crypto.PublicKey{key.Public()}, want: ErrUnsignedOrMalformed},
		{name: "no envelope", sig: tamper(t, good, func(b map[string]any) { delete(b, "dsseEnvelope") }), trust: []crypto.PublicKey{key.Public()}, want: ErrUnsignedOrMalformed},
		{name: "wrong key", sig: good, trust: []crypto.PublicKey{other.Public()}, want: ErrUntrustedKey},
		{name: "trusted for nothing", sig: good, trust: nil, want: ErrUntrustedKey},
		{name: "hint names another trusted key", sig: wrongHint, trust: []crypto.PublicKey{other.Public()}, want: ErrBadSignature},
		{name: "tampered signature", sig: tamperedSig, trust: []crypto.PublicKey{key.Public()}, want: ErrBadSignature},
		{name: "tampered payload", sig: tamperedPayload, trust: []crypto.PublicKey{key.Public()}, want: ErrBadSignature},
		{name: "tampered file", sig: good, trust: []crypto.PublicKey{key.Public()}, want: ErrDigestMismatch, says: `changed: "a/b"`,
			edit: func(dir string) { write(t, dir, "a/b", "evil") }},
		{name: "extra file", sig: good, trust: []crypto.PublicKey{key.Public()}, want: ErrDigestMismatch, says: `extra: "config/extra.json"`,
			edit: func(dir string) { write(t, dir, "config/extra.json", "{}") }},
		{name: "missing file", sig: good, trust: []crypto.PublicKey{key.Public()}, want: ErrDigestMismatch, says: `missing: "model.onnx"`,
			edit: func(dir string) { _ = os.Remove(filepath.Join(dir, "model.onnx")) }},
		{name: "bundle for another directory", sig: forOther, trust: []crypto.PublicKey{key.Public()}, want: ErrDigestMismatch, says: `missing: "different.onnx"`},
		{name: "older OMS (rawBytes)", sig: old, trust: []crypto.PublicKey{key.Public()}, want: ErrUnsupportedFormat, says: "before v1.1"},
		{name: "certificate", sig: certificate, trust: []crypto.PublicKey{key.Public()}, want: ErrUnsupportedFormat},
		{name: "old bundle media type", sig: oldMedia, trust: []crypto.PublicKey{key.Public()}, want: ErrUnsupportedFormat},
		{name: "symlink added", sig: good, trust: []crypto.PublicKey{key.Public()}, want: ErrSymlink,
			edit: func(dir string) { _ = os.Symlink("model.onnx", filepath.Join(dir, "alias")) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := writeModel(t, testModel)
			if c.edit != nil {
				c.edit(dir)
			}
			_, err := Verify(dir, c.sig, trust(t, c.trust...))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.says != "" && !strings.Contains(err.Error(), c.says) {
				t.Errorf("err = %v, want it to say %q", err, c.says)
			}
			if errors.Is(c.want, ErrSymlink) {
				return // VerifyDigests gets a list of regular files only
			}
			// VerifyDigests, given the directory's digests, decides alike.
			_, err = VerifyDigests(c.sig, trust(t, c.trust...), allFiles(t, dir))
			if !errors.Is(err, c.want) || (c.says != "" && !strings.Contains(err.Error(), c.says)) {
				t.Errorf("VerifyDigests: err = %v, want %v saying %q", err, c.want, c.says)
			}
		})
	}
}

// allFiles hashes every regular file of dir, ignoring nothing: what an
// extraction that hashes as it writes reports.
func allFiles(t *testing.T, dir string) []File {
	t.Helper()
	m, err := DigestDirectory(dir, Options{IgnorePaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Files
}

func TestVerifyDigestsMatchesVerify(t *testing.T) {
	t.Parallel()
	key := mustP384(t)
	dir := writeModel(t, testModel)
	sig := signDir(t, dir, key)
	write(t, dir, ".git/HEAD", "ref: refs/heads/main\n") // under the default ignore paths
	write(t, dir, SignatureFile, string(sig))
	want, err := Verify(dir, sig, trust(t, key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	files := allFiles(t, dir)
	slices.Reverse(files) // any order
	got, err := VerifyDigests(sig, trust(t, key.Public()), files)
	if err != nil {
		t.Fatal(err)
	}
	// Sizes are the caller's; Verify names an ignored directory once,
	// VerifyDigests its files.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(File{}, "Size"), cmpopts.IgnoreFields(Result{}, "Ignored")); diff != "" {
		t.Errorf("VerifyDigests differs from Verify (-Verify +VerifyDigests):\n%s", diff)
	}
	if len(got.Ignored) != 1 {
		t.Errorf("ignored = %q, want .git/HEAD", got.Ignored)
	}
	if _, err := VerifyDigests(sig, trust(t, key.Public()), append(files, File{Name: "../x"})); err == nil {
		t.Error("VerifyDigests accepted a file name outside the directory")
	}
}

func TestVerifyStatementChecks(t *testing.T) {
	t.Parallel()
	key := mustP384(t)
	dir := writeModel(t, testModel)
	m, err := DigestDirectory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := statementPayload(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		from string
		to   string
		want error
	}{
		{"old predicate", predicateType, predicateTypeOld, ErrUnsupportedFormat},
		{"shards", `"method": "files"`, `"method": "shards"`, ErrUnsupportedFormat},
		{"blake2", `"hash_type": "sha256"`, `"hash_type": "blake2"`, ErrUnsupportedFormat},
		{"escaping name", `"name": "model.onnx"`, `"name": "../model.onnx"`, ErrUnsignedOrMalformed},
		{"escaping ignore path", `"model.sig"`, `"/etc"`, ErrUnsignedOrMalformed},
		{"subject digest", `"sha256": "`, `"sha256": "00`, ErrUnsignedOrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := strings.Replace(string(payload), c.from, c.to, 1)
			if p == string(payload) {
				t.Fatalf("edit %q did not apply", c.from)
			}
			sig := signPayload(t, key, []byte(p))
			_, err := Verify(dir, sig, trust(t, key.Public()))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// signPayload signs an arbitrary statement, to test what a trusted but
// careless or hostile signer could produce.
func signPayload(t *testing.T, key crypto.Signer, payload []byte) []byte {
	t.Helper()
	hash := hashFor(key.Public())
	d := hash.New()
	d.Write(pae(payloadType, payload))
	sig, err := key.Sign(rand.Reader, d.Sum(nil), hash)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := KeyID(key.Public())
	out, err := marshal(bundleJSON{
		MediaType:            bundleMediaType,
		VerificationMaterial: &verificationMaterial{PublicKey: &publicKeyID{Hint: hint}, TlogEntries: []any{}},
		DSSEEnvelope:         &envelopeJSON{Payload: payload, PayloadType: payloadType, Signatures: []signatureJSN{{Sig: sig}}},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHintForms(t *testing.T) {
	t.Parallel()
	key := mustP384(t)
	dir := writeModel(t, testModel)
	sig := signDir(t, dir, key)
	hints, err := KeyHints(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	// sigstore-go's form: base64(sha256(DER)).
	alt := []byte(strings.Replace(string(sig), hints[0], hints[1], 1))
	res, err := Verify(dir, alt, trust(t, key.Public()))
	if err != nil {
		t.Fatalf("Verify with the DER hint: %v", err)
	}
	if res.KeyID != hints[0] || res.Hint != hints[1] {
		t.Errorf("result key id %q hint %q", res.KeyID, res.Hint)
	}
}

func tamper(t *testing.T, sig []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(sig, &b); err != nil {
		t.Fatal(err)
	}
	edit(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerifyBundle(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ks, err := KeySet(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	m := Manifest{ModelName: "m", Files: []File{{Name: "a", Digest: sha256.Sum256([]byte("a"))}}, IgnorePaths: DefaultIgnorePaths}
	good, err := Sign(m, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, p := range []string{"testdata/v1.1.0-elliptic-key.sig", "testdata/v1.0.1-elliptic-key.sig"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Fuzz(func(t *testing.T, sig []byte) {
		s, err := VerifyBundle(sig, ks)
		if err != nil {
			for _, e := range []error{ErrUnsignedOrMalformed, ErrUntrustedKey, ErrBadSignature, ErrUnsupportedFormat} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		for _, f := range s.Files {
			if !validName(f.Name) {
				t.Fatalf("verified manifest holds %q", f.Name)
			}
		}
	})
}
