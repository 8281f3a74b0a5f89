package main

// rampart logout and rampart whoami: commands over the stored login.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

func logoutCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart logout", "rampart logout [--credentials FILE]", stdout)
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
		if _, lerr := loadCredentials(st.credentials, io.Discard); errors.Is(lerr, errNotLoggedIn) {
			fmt.Fprintf(stdout, "Not logged in (no credentials at %s).\n", st.credentials)
			return nil
		}
		return err
	}
	// Revoking the refresh token ends the server-side session, and with it
	// every access token issued in it.
	token, hint := s.creds.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = s.creds.AccessToken, "access_token"
	}
	if err := s.revoke(ctx, token, hint); err != nil {
		return fmt.Errorf("the server did not revoke the login, so the credentials at %s are kept: %w (to forget them without revoking, delete the file)", s.credsPath, err)
	}
	if err := removeCredentials(s.credsPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Logged out of %s\n", s.server)
	return nil
}

// revoke is RFC 7009 token revocation as the public CLI client.
func (s *session) revoke(ctx context.Context, token, hint string) error {
	d, err := s.discover(ctx)
	if err != nil {
		return err
	}
	endpoint := d.RevocationEndpoint
	if endpoint == "" {
		endpoint = s.server + "/oauth/revoke"
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {cliClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	res, err := s.http.Do(req)
	if err != nil {
		return transportError(s.server, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return readAPIError(res)
	}
	return nil
}

func whoamiCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart whoami", "rampart whoami [--json] [--credentials FILE]", stdout)
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the account as JSON")
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
	var who me
	err = s.authorized(ctx, func(token string) error {
		return s.do(ctx, http.MethodGet, "/api/v1/me", token, nil, &who)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Server string `json:"server"`
			me
		}{s.server, who})
	}
	fmt.Fprintf(stdout, "server: %s\nname:   %s\nid:     %s\nkind:   %s\nadmin:  %t\n", s.server, who.Name, who.ID, who.Kind, who.Admin)
	if who.MustChangePassword {
		fmt.Fprintln(stderr, "You must change your password before you can do anything else.")
	}
	return nil
}
