package main

// The credentials file holds one login: the server, the CA the CLI
// trusted for it, and the tokens. It is private to the user (0600 in a
// 0700 directory) and replaced atomically, so a crash or a concurrent
// command never leaves half a file.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/oauth2"
)

// credentials is the stored login.
type credentials struct {
	Server       string    `json:"server"`
	CAFile       string    `json:"ca_file,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// expiryMargin refreshes an access token this long before it expires, so
// it does not expire in flight.
const expiryMargin = 30 * time.Second

// expired reports whether the access token should be refreshed before use.
func (c *credentials) expired(now time.Time) bool {
	return c.AccessToken == "" || (!c.Expiry.IsZero() && !now.Add(expiryMargin).Before(c.Expiry))
}

// setToken stores a token response; a response without a refresh token
// keeps the current one.
func (c *credentials) setToken(t *oauth2.Token) {
	c.AccessToken, c.TokenType, c.Expiry = t.AccessToken, t.TokenType, t.Expiry.UTC()
	if t.RefreshToken != "" {
		c.RefreshToken = t.RefreshToken
	}
}

// loadCredentials reads path; errNotLoggedIn when it does not exist. A
// file that other users can read is used, with a warning.
func loadCredentials(path string, stderr io.Writer) (*credentials, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the user's own credentials path
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotLoggedIn
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "WARNING: %s can be read by other users; fix it with: chmod 600 %s\n", path, path)
	}
	var c credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("the credentials file %s is damaged (%v): delete it and run rampart login", path, err)
	}
	if c.Server == "" || c.AccessToken == "" {
		return nil, fmt.Errorf("the credentials file %s is incomplete: delete it and run rampart login", path)
	}
	if _, err := normalizeServer(c.Server); err != nil {
		return nil, fmt.Errorf("the credentials file %s names a bad server %q: delete it and run rampart login", path, c.Server)
	}
	return &c, nil
}

// saveCredentials writes c to path atomically: a private temporary file
// in the same directory, synced, then renamed over path. The directory is
// created 0700 when missing.
func saveCredentials(path string, c credentials) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ") // #nosec G117 -- this 0600 file exists to hold the tokens
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err = f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// removeCredentials deletes path (and its lock file); a missing file is
// not an error.
func removeCredentials(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete credentials: %w", err)
	}
	_ = os.Remove(path + ".lock")
	return nil
}

// lockWait bounds the wait for another rampart command's token refresh.
const lockWait = 30 * time.Second

// lockCredentials takes an exclusive lock on path's lock file (path.lock),
// waiting for another command to finish with it; unlock releases it.
func lockCredentials(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock credentials: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600) // #nosec G304 -- the user's own credentials path
	if err != nil {
		return nil, fmt.Errorf("lock credentials: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing drops the flock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("lock credentials %s.lock: %w (is another rampart command stuck?)", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, errors.New("interrupted")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
