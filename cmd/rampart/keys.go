package main

// rampart keys: signing-key administration as the logged-in admin.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const keysSynopsis = "rampart keys rotate [--credentials FILE] | rampart keys rotate-master --data-dir DIR [--master-key-file CURRENT] [--new-key-file NEW]"

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	sub, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, rest = args[0], args[1:]
	}
	switch sub {
	case "rotate":
		return keysRotate(ctx, rest, stdout, stderr, env)
	case "rotate-master":
		return keysRotateMaster(ctx, rest, stdout, env)
	case "help":
		fmt.Fprintf(stdout, "Usage: %s\n\n  rotate          make a new token-signing key current (the old one stays published until its tokens expire)\n  rotate-master   re-seal every stored secret under a new master key (offline: the server must be stopped)\n", keysSynopsis)
		return nil
	case "":
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(stdout, "Usage: %s\n", keysSynopsis)
			return nil
		}
		return usageError("missing subcommand: %s", keysSynopsis)
	default:
		return usageError("unknown subcommand %q: %s", sub, keysSynopsis)
	}
}

func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart keys rotate", keysSynopsis, stdout)
	f.register(fs)
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	st, err := f.resolve(env)
	if err != nil {
		return err
	}
	s, err := openLoggedIn(st, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	err = s.authorized(ctx, func(token string) error {
		return s.do(ctx, http.MethodPost, "/api/v1/signing-keys/rotate", token, nil, &raw)
	})
	if err != nil {
		return err
	}
	var out struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(raw, &out) != nil || out.KID == "" {
		return fmt.Errorf("the server rotated the key but its answer names no kid: %s", raw)
	}
	fmt.Fprintln(stdout, out.KID)
	return nil
}
