package main

// rampart audit verify: the offline check of the audit log. It reads the
// database file directly, read-only and without the data directory's lock,
// so it works with the server stopped and also while it runs (SQLite's WAL
// lets a reader see a consistent snapshot next to the writer).

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

const (
	auditSynopsis       = "rampart audit verify|export|tail|resolve [flags]"
	auditVerifySynopsis = "rampart audit verify --data-dir DIR [--public-key FILE] [--copy FILE]\n\n" +
		"Checks the whole audit log offline: the hash chain of every record and the\n" +
		"signature of every checkpoint; with --copy, also that a JSON-lines copy\n" +
		"(--audit-file) is intact and that every record in it is still in the log.\n" +
		"Exit status: 0 intact; 1 not intact (the first bad record is named) or not\n" +
		"readable; 2 a wrong command line."
)

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, auditSynopsis, []accessSubcommand{
		{"verify", "check the audit log's hash chain and checkpoint signatures (offline, on the server's machine)",
			func(ctx context.Context, args []string, stdout, _ io.Writer, env func(string) (string, bool)) error {
				return auditVerify(ctx, args, stdout, env)
			}},
		{"export", "write the audit records as JSON lines (auditor)", auditExport},
		{"tail", "follow the audit log: print new records as JSON lines until interrupted (auditor)", auditTail},
		{"resolve", "tell whom a pseudonym stands for while its subject exists (auditor)", auditResolve},
	}, args, stdout, stderr, env)
}

func auditVerify(ctx context.Context, args []string, stdout io.Writer, env func(string) (string, bool)) error {
	flags := newFlagSet("rampart audit verify", auditVerifySynopsis, stdout)
	dataDir := flags.String("data-dir", "", "the server's data directory (env RAMPART_DATA_DIR)")
	pubFile := flags.String("public-key", "", "PEM public key that verifies the checkpoints (default DATA_DIR/keys/"+audit.PublicKeyFile+
		"); a copy kept outside the data directory is the stronger anchor")
	copyFile := flags.String("copy", "", "a JSON-lines copy of the log (the server's --audit-file) to check against it")
	if done, err := parseFlags(flags, args); done || err != nil {
		return err
	}
	if *dataDir == "" {
		*dataDir, _ = env("RAMPART_DATA_DIR")
	}
	if *dataDir == "" {
		return usageError("--data-dir is required: %s", auditSynopsis)
	}
	if *pubFile == "" {
		*pubFile = filepath.Join(*dataDir, datadir.KeysDir, audit.PublicKeyFile)
	}
	pub, err := audit.LoadPublicKey(*pubFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no audit public key at %s: the server has not created one, or it was removed; give a copy with --public-key", *pubFile)
	}
	if err != nil {
		return err
	}
	st, err := sqlite.OpenReadOnly(ctx, filepath.Join(*dataDir, datadir.DatabaseFile))
	if err != nil {
		return err
	}
	defer st.Close()

	rep, err := audit.Verify(ctx, st, pub)
	if ve := (*audit.VerifyError)(nil); errors.As(err, &ve) {
		return fmt.Errorf("audit log is NOT intact: %w (%d records before it verified)", ve, rep.Records)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d records", rep.Records)
	if rep.Records > 0 {
		fmt.Fprintf(stdout, " (1 to %d)", rep.LastSeq)
	}
	fmt.Fprintf(stdout, ", %d checkpoints", rep.Checkpoints)
	if rep.Checkpoints > 0 {
		fmt.Fprintf(stdout, ", the last at record %d", rep.LastCheckpointSeq)
	}
	fmt.Fprintln(stdout)
	if rep.Unsigned > 0 {
		fmt.Fprintf(stdout, "%d records after the last checkpoint are chained but not yet signed\n", rep.Unsigned)
	}
	if *copyFile != "" {
		if err := verifyCopy(ctx, st, *copyFile, pub, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "public key %s (%s)\n", audit.Fingerprint(pub), *pubFile)
	rate := ""
	if s := rep.Duration.Seconds(); s > 0 && rep.Records > 0 {
		rate = fmt.Sprintf(", %.0f records/s", float64(rep.Records)/s)
	}
	fmt.Fprintf(stdout, "verified in %s%s\n", rep.Duration.Round(time.Millisecond), rate)
	return nil
}

// verifyCopy checks the JSON-lines copy at path against the log.
func verifyCopy(ctx context.Context, st store.Store, path string, pub ed25519.PublicKey, stdout io.Writer) error {
	f, err := os.Open(path) // #nosec G304 -- operator-given path
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := audit.VerifyCopy(ctx, st, f, pub)
	if ve := (*audit.VerifyError)(nil); errors.As(err, &ve) {
		return fmt.Errorf("audit copy %s does NOT match the log: %w", path, ve)
	}
	if err != nil {
		return fmt.Errorf("audit copy %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "copy %s matches: %d records (%d to %d), %d checkpoints", path, rep.Records, rep.FirstSeq, rep.LastSeq, rep.Checkpoints)
	if rep.Pruned > 0 {
		fmt.Fprintf(stdout, ", %d since pruned from the log", rep.Pruned)
	}
	if rep.Behind > 0 {
		fmt.Fprintf(stdout, "; the log has %d records after the copy's last", rep.Behind)
	}
	fmt.Fprintln(stdout)
	return nil
}
