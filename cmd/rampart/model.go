package main

// rampart model sign|verify: OpenSSF Model Signing (OMS) v1.0 keyed
// signatures of a model directory, offline; the format is the reference
// tool's (`model_signing sign key` / `verify key`).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rampart-ml/rampart/internal/modelsign"
)

const (
	modelSynopsis       = "rampart model onboard|list|show|download|delete|sbom|update [flags] | rampart model sign|verify [flags] DIR | rampart model keys add|list|revoke|delete"
	modelSignSynopsis   = "rampart model sign --key PRIVATE.pem DIR\n\nWrites DIR/" + modelsign.SignatureFile + ": an OpenSSF Model Signing v1.0 signature of every file in DIR\n(ECDSA P-256/P-384/P-521 or Ed25519 key, unencrypted PEM: PKCS#8 or SEC 1)."
	modelVerifySynopsis = "rampart model verify --key PUBLIC.pem [--signature FILE] DIR\n\nChecks DIR against its OpenSSF Model Signing signature, offline.\nExit status: 0 verified; 1 not verified (the problem is named); 2 a wrong command line."
)

func modelCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, modelSynopsis, []accessSubcommand{
		{"onboard", "upload a model version (a directory or a .tar/.tar.gz/.zip of it)", modelOnboard},
		{"list", "list the models you may read", modelList},
		{"show", "show a model and its versions, or one version (ID@VERSION)", modelShow},
		{"download", "download a version's signed directory (as a tar, or unpacked)", modelDownload},
		{"delete", "delete a version (ID@VERSION) or a model without versions", modelDelete},
		{"sbom", "print a version's CycloneDX ML-BOM", modelSBOM},
		{"update", "change a model's title or description", modelUpdate},
		{"sign", "sign a model directory with a private key (writes DIR/model.sig)", modelSign},
		{"verify", "verify a model directory's signature with a public key", modelVerify},
		{"keys", "manage the signer keys the registry trusts per domain (admin)", modelKeysCmd},
	}, args, stdout, stderr, env)
}

func modelSign(_ context.Context, args []string, stdout, _ io.Writer, _ func(string) (string, bool)) error {
	flags := newFlagSet("rampart model sign", modelSignSynopsis, stdout)
	keyFile := flags.String("key", "", "PEM private key to sign with (required)")
	dir, done, err := parseFlagsAndArg(flags, args, "model directory")
	if done || err != nil {
		return err
	}
	if *keyFile == "" {
		return usageError("--key is required: %s", "rampart model sign --key PRIVATE.pem DIR")
	}
	keyPEM, err := readBounded(*keyFile, 64<<10)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	key, err := modelsign.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyFile, err)
	}
	m, err := modelsign.DigestDirectory(dir, modelsign.Options{})
	if err != nil {
		return err
	}
	sig, err := modelsign.Sign(m, key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, modelsign.SignatureFile), sig); err != nil {
		return err
	}
	id, _ := modelsign.KeyID(key.Public())
	d := m.SubjectDigest()
	fmt.Fprintf(stdout, "signed %d files of %s\nsubject sha256:%x\nkey %s\n", len(m.Files), dir, d, id)
	return nil
}

func modelVerify(_ context.Context, args []string, stdout, _ io.Writer, _ func(string) (string, bool)) error {
	flags := newFlagSet("rampart model verify", modelVerifySynopsis, stdout)
	keyFile := flags.String("key", "", "PEM public key the signature must verify with (required)")
	sigFile := flags.String("signature", "", "the signature (default DIR/"+modelsign.SignatureFile+")")
	dir, done, err := parseFlagsAndArg(flags, args, "model directory")
	if done || err != nil {
		return err
	}
	if *keyFile == "" {
		return usageError("--key is required: %s", "rampart model verify --key PUBLIC.pem DIR")
	}
	if *sigFile == "" {
		*sigFile = filepath.Join(dir, modelsign.SignatureFile)
	}
	keyPEM, err := readBounded(*keyFile, 64<<10)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	pub, err := modelsign.ParsePublicKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyFile, err)
	}
	keys, err := modelsign.KeySet(pub)
	if err != nil {
		return err
	}
	sig, err := readBounded(*sigFile, modelsign.MaxBundleSize)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no signature at %s", modelsign.ErrUnsignedOrMalformed, *sigFile)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", modelsign.ErrUnsignedOrMalformed, err)
	}
	res, err := modelsign.Verify(dir, sig, keys)
	if err != nil {
		return fmt.Errorf("model NOT verified: %w", err)
	}
	fmt.Fprintf(stdout, "verified %d files of %s\nsubject sha256:%x\nkey %s\n", len(res.Files), dir, res.SubjectDigest, res.KeyID)
	for _, name := range res.Ignored {
		fmt.Fprintf(stdout, "not covered by the signature (ignored): %s\n", name)
	}
	return nil
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name) // #nosec G304 -- a path the operator gave on the command line
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// writeFileAtomic replaces name with data, so an interrupted sign never
// leaves a truncated model.sig.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".model.sig-*")
	if err != nil {
		return fmt.Errorf("write signature: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("write signature: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write signature: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write signature: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write signature: %w", err)
	}
	return nil
}
