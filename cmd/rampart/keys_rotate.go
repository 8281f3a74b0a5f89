package main

// rampart keys rotate-master: offline rotation of the master key of a
// stopped server's data directory (internal/rekey).

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/rekey"
	"github.com/rampart-ml/rampart/internal/store"
)

const rotateMasterSynopsis = "rampart keys rotate-master --data-dir DIR [--master-key-file CURRENT] [--new-key-file NEW]"

func keysRotateMaster(ctx context.Context, args []string, stdout io.Writer, env func(string) (string, bool)) error {
	var o rekey.Options
	fs := newFlagSet("rampart keys rotate-master", rotateMasterSynopsis, stdout)
	envOr := func(name string) string { v, _ := env(name); return v }
	fs.StringVar(&o.DataDir, "data-dir", envOr("RAMPART_DATA_DIR"), "the data directory of the stopped server (RAMPART_DATA_DIR)")
	fs.StringVar(&o.MasterKeyFile, "master-key-file", envOr("RAMPART_MASTER_KEY_FILE"),
		"the operator's current master key, if the server runs with --master-key-file (RAMPART_MASTER_KEY_FILE)")
	fs.StringVar(&o.NewKeyFile, "new-key-file", "",
		"the new key (32 bytes, 0600); created with a generated key if it does not exist. Required with --master-key-file; otherwise a generated key is kept only in the data directory")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if o.DataDir == "" {
		return usageError("--data-dir is required: %s", rotateMasterSynopsis)
	}
	rep, err := rekey.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("rotate the master key: %w", err)
	}
	printRotation(stdout, o, rep)
	return nil
}

func printRotation(w io.Writer, o rekey.Options, rep rekey.Report) {
	if rep.Resumed {
		fmt.Fprintln(w, "Finished an interrupted master key rotation.")
	}
	d := rep.Database
	fmt.Fprintf(w, "Re-sealed %d token signing keys, %d TOTP secrets and %d audit pseudonym secrets (%d were already under the new key), the audit signing key and the artifact data keys.\n",
		d.Resealed[store.SecretSigningKey], d.Resealed[store.SecretTOTP], d.Resealed[store.SecretPseudonym], d.AlreadyRotated)
	if rep.Installed {
		fmt.Fprintf(w, "The new master key is installed in %s; the old one opens nothing in the data directory any more.\n",
			filepath.Join(o.DataDir, datadir.KeysDir, datadir.MasterKeyFile))
	} else {
		fmt.Fprintf(w, "The new master key is in %s. Now replace your --master-key-file (%s) with it and start the server with it: the old key opens nothing in the data directory any more.\n",
			o.NewKeyFile, o.MasterKeyFile)
	}
	fmt.Fprintln(w, "Backups taken before the rotation still need the old key: keep it as long as you keep them, and no longer.")
}
