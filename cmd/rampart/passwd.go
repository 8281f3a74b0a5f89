package main

// rampart passwd: change the logged-in user's password.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const passwdSynopsis = "rampart passwd --stdin [--otp CODE] [--credentials FILE]" // #nosec G101 -- usage text

// passwdCmd changes the password of the logged-in user. The server revokes
// every session of the account on a change, so passwd logs in again with
// the new password and stores the new tokens.
func passwdCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	var fromStdin bool
	var otp string
	fs := newFlagSet("rampart passwd", passwdSynopsis, stdout)
	f.register(fs)
	fs.BoolVar(&fromStdin, "stdin", false, "read the current and the new password from stdin, one per line (required: passwords never go on the command line)")
	fs.StringVar(&otp, "otp", "", "one-time code from an authenticator app, if the account has one")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if !fromStdin {
		return usageError("give --stdin and the current and new password on two lines of stdin (in a shell: read -rs)")
	}
	current, next, err := readTwoPasswords(stdin)
	if err != nil {
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
	var who me
	err = s.authorized(ctx, func(token string) error {
		if err := s.do(ctx, http.MethodGet, "/api/v1/me", token, nil, &who); err != nil {
			return err
		}
		body := map[string]string{"current_password": current, "new_password": next}
		if otp != "" {
			body["otp"] = otp
		}
		return s.do(ctx, http.MethodPost, "/api/v1/me/password", token, body, nil)
	})
	if err != nil {
		return err
	}
	if otp != "" {
		// The code was just used; a second login needs a new one.
		fmt.Fprintln(stdout, "Password changed. Every session was ended: run rampart login again.")
		return nil
	}
	tok, err := s.passwordLogin(ctx, who.Name, next, "")
	if err != nil {
		return fmt.Errorf("password changed, but logging in again failed: %w", err)
	}
	c := credentials{Server: s.server, CAFile: s.caFile}
	c.setToken(tok)
	unlock, err := lockCredentials(ctx, s.credsPath)
	if err != nil {
		return err
	}
	defer unlock()
	if err := saveCredentials(s.credsPath, c); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Password changed. Other sessions were ended; this one continues.")
	return nil
}

// readTwoPasswords reads the current and the new password, one per line.
func readTwoPasswords(stdin io.Reader) (string, string, error) {
	if stdin == nil {
		return "", "", usageError("--stdin: no stdin")
	}
	r := bufio.NewReader(io.LimitReader(stdin, 2*maxPasswordBytes))
	var out [2]string
	for i := range out {
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("--stdin: read stdin: %w", err)
		}
		out[i] = strings.TrimRight(line, "\r\n")
		if out[i] == "" {
			return "", "", usageError("--stdin: expected the current password on the first line and the new one on the second")
		}
	}
	return out[0], out[1], nil
}
