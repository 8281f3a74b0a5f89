// Command rampart is the single Rampart binary: the server (`rampart serve`),
// its password-hash worker processes, and the CLI client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rampart-ml/rampart/internal/identity/hashworker"
	"github.com/rampart-ml/rampart/internal/runtime/engine"
	"github.com/rampart-ml/rampart/internal/runtime/worker"
)

func main() {
	// A re-executed copy of this binary computing password hashes for the
	// server never gets past this line.
	hashworker.Main()
	// Nor does a sandboxed model worker (`rampart worker`, started by the
	// supervisor with its descriptors already in place), which runs models
	// with ONNX Runtime.
	worker.RegisterEngine(engine.New)
	worker.Main()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// After the first signal starts a graceful shutdown, restore the default
	// handling so a second Ctrl-C stops the process at once.
	go func() { <-ctx.Done(); stop() }()
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// exitUsage is the exit code for a wrong command line or configuration.
const exitUsage = 2

// errUsage marks errors caused by how rampart was invoked.
var errUsage = errors.New("usage")

// realMain runs one command and returns the process exit code.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(ctx, rest, stdout, stderr, env)
	case "version":
		err = versionCmd(rest, stdout)
	case "login":
		err = loginCmd(ctx, rest, os.Stdin, stdout, stderr, env)
	case "logout":
		err = logoutCmd(ctx, rest, stdout, stderr, env)
	case "whoami":
		err = whoamiCmd(ctx, rest, stdout, stderr, env)
	case "keys":
		err = keysCmd(ctx, rest, stdout, stderr, env)
	case "passwd":
		err = passwdCmd(ctx, rest, os.Stdin, stdout, stderr, env)
	case "domains":
		err = domainsCmd(ctx, rest, stdout, stderr, env)
	case "grants":
		err = grantsCmd(ctx, rest, stdout, stderr, env)
	case "access":
		err = accessCmd(ctx, rest, stdout, stderr, env)
	case "audit":
		err = auditCmd(ctx, rest, stdout, stderr, env)
	case "account":
		err = accountCmd(ctx, rest, stdout, stderr, env)
	case "model":
		err = modelCmd(ctx, rest, stdout, stderr, env)
	case "service":
		err = serviceCmd(ctx, rest, stdout, stderr, env)
	case "doctor":
		err = doctorCmd(ctx, rest, stdout, env)
	case "help", "-h", "--help":
		printUsage(stdout)
	default:
		fmt.Fprintf(stderr, "rampart: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return exitUsage
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errDenied): // access check has printed the answer
		return exitDenied
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rampart %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "rampart %s: %v\n", args[0], err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Rampart: a secure, multi-tenant model execution environment.

Usage:
  rampart serve --data-dir DIR [flags]   start the server (see rampart serve --help)
  rampart login --server URL [flags]     log in (browser, --device, or --username --password-stdin)
  rampart logout                         revoke the stored login and delete it
  rampart whoami                         show the logged-in account
  rampart passwd --stdin                 change your password (current and new on two lines of stdin)
  rampart keys rotate                    rotate the token-signing key (admin)
  rampart keys rotate-master --data-dir DIR  re-seal every secret under a new master key (server stopped)
  rampart domains list|create|delete     list domains; create and delete them (admin)
  rampart grants list|add|revoke         list, give and revoke privileges on domains
  rampart access check [flags]           may a subject act on a target? (exit 0 allowed, 3 denied)
  rampart audit verify --data-dir DIR    check the audit log offline (exit 0 intact, 1 not: names the first bad record)
  rampart audit export|tail [flags]      write the audit records as JSON lines; follow new ones (auditor)
  rampart audit resolve PSEUDONYM        whom a pseudonym stands for (auditor)
  rampart account export                 everything the server holds about you, as JSON
  rampart model sign|verify --key PEM DIR sign a model directory (OpenSSF model signing); verify one offline
  rampart model keys add|list|revoke|delete  the signer keys the registry trusts per domain (admin)
  rampart service create|list|show|start|stop|scale|delete  model services (docs/SERVICES.md)
  rampart doctor --data-dir DIR [flags]  hardening self-check: PASS/WARN/FAIL with fixes (exit 1 on FAIL)
  rampart version [--json]               print version, commit, Go and dependency versions
  rampart help                           this text
`)
}
