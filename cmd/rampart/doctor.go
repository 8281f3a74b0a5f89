package main

// rampart doctor: the hardening self-check (internal/doctor). It reads the
// data directory (database read-only, without the lock, so next to a
// running server), the configuration and the host, and optionally asks a
// server over TLS; it changes nothing.

import (
	"context"
	"fmt"
	"io"

	"github.com/rampart-ml/rampart/internal/doctor"
)

const doctorSynopsis = "rampart doctor [--data-dir DIR] [--config FILE] [--server URL [--ca FILE]] [--output text|json]\n\n" +
	"Checks this installation's hardening and prints PASS, WARN or FAIL for each\n" +
	"point, with the fix: data directory permissions, TLS certificates, insecure\n" +
	"settings, sandbox features of this host, key ages, the audit chain, unsigned\n" +
	"models, wide grants and admins without TOTP. Run it as the server's user on\n" +
	"the server's machine; it changes nothing. It sees the settings of --config\n" +
	"and RAMPART_* variables, not flags given to rampart serve.\n" +
	"Exit status: 0 no FAIL; 1 at least one FAIL; 2 a wrong command line."

func doctorCmd(ctx context.Context, args []string, stdout io.Writer, env func(string) (string, bool)) error {
	flags := newFlagSet("rampart doctor", doctorSynopsis, stdout)
	dataDir := flags.String("data-dir", "", "the server's data directory (env RAMPART_DATA_DIR)")
	configFile := flags.String("config", "", "the server's YAML configuration file (env RAMPART_CONFIG)")
	serverURL := flags.String("server", "", "also check the running server at this base URL (https://HOST:PORT)")
	caFile := flags.String("ca", "", "CA certificate that verifies --server (default DATA_DIR/tls/ca.pem)")
	output := flags.String("output", "text", "text or json ([{id, status, message, fix}])")
	if done, err := parseFlags(flags, args); done || err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError("unexpected argument %q: %s", flags.Arg(0), doctorSynopsis)
	}
	if *output != "text" && *output != "json" {
		return usageError("--output must be text or json, not %q", *output)
	}
	if *dataDir == "" {
		*dataDir, _ = env("RAMPART_DATA_DIR")
	}
	if *configFile == "" {
		*configFile, _ = env("RAMPART_CONFIG")
	}
	if *dataDir == "" && *configFile == "" && *serverURL == "" {
		return usageError("give --data-dir, --config or --server: %s", doctorSynopsis)
	}
	rs := doctor.Run(ctx, doctor.Options{
		DataDir: *dataDir, ConfigFile: *configFile, Env: env,
		Server: *serverURL, CAFile: *caFile,
	})
	write := doctor.WriteText
	if *output == "json" {
		write = doctor.WriteJSON
	}
	if err := write(stdout, rs); err != nil {
		return err
	}
	if n := doctor.Count(rs, doctor.Fail); n > 0 {
		return fmt.Errorf("%d checks failed", n)
	}
	return nil
}
