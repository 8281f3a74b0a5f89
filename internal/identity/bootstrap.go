// Package identity owns who users are: accounts and their credentials.
// This first part bootstraps the admin account without default credentials;
// the OIDC provider, password policy, lockout and federation build on it.
//
// It never logs, returns or stores a password in clear, except the one
// generated bootstrap password, written once to a 0600 file for the operator.
package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/store"
)

// AdminName is the account created on first start.
const AdminName = "admin"

// Bootstrap describes how to create the first admin account.
type Bootstrap struct {
	// Password is the operator's choice (RAMPART_ADMIN_PASSWORD); empty means
	// generate a random one and write it to PasswordFile.
	Password     string
	PasswordFile string
	Params       password.Params
	Logger       *slog.Logger
	// Recorder records the account's creation (required), in the
	// transaction that creates it.
	Recorder *audit.Recorder
}

// EnsureAdmin creates the admin account if it does not exist. The account
// row, its audit record ("account.create" by the system actor "bootstrap")
// and the password file appear together or not at all.
func EnsureAdmin(ctx context.Context, st store.Store, b Bootstrap) error {
	if b.Recorder == nil {
		return errors.New("bootstrap admin account: an audit recorder is required")
	}
	if b.Password != "" {
		if err := password.CheckPolicy(b.Password, AdminName); err != nil {
			return fmt.Errorf("RAMPART_ADMIN_PASSWORD: %w", err)
		}
	}
	wroteFile := false
	created := false
	err := st.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Accounts().AccountByName(ctx, AdminName)
		if err == nil {
			return nil // not the first start
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		pw, generated := b.Password, b.Password == ""
		if generated {
			pw = rand.Text() // 26 base32 characters, 130 bits
		}
		hash, err := password.Hash(pw, b.Params)
		if err != nil {
			return err
		}
		id := newID()
		if err := tx.Accounts().CreateAccount(ctx, store.Account{
			ID: id, Name: AdminName, PasswordHash: hash, Admin: true,
			MustChangePassword: generated, CreatedAt: time.Now().UTC(),
		}); err != nil {
			return fmt.Errorf("create admin account: %w", err)
		}
		if err := b.Recorder.Record(ctx, tx, audit.Entry{
			Action: "account.create", Target: audit.Target{Kind: TargetAccount}, TargetSubject: id, Reason: "admin",
			Actor: &audit.Actor{ID: "bootstrap", Kind: audit.ActorSystem},
		}); err != nil {
			return err
		}
		if generated {
			// A file left by a start that crashed before its commit holds a
			// password that never worked; replace it.
			if err := os.Remove(b.PasswordFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove stale %s: %w", b.PasswordFile, err)
			}
			if err := datadir.WriteSecretFile(b.PasswordFile, []byte(pw+"\n")); err != nil {
				return err
			}
			wroteFile = true
		}
		created = true
		return nil
	})
	if err != nil {
		if wroteFile {
			_ = os.Remove(b.PasswordFile)
		}
		return fmt.Errorf("bootstrap admin account: %w", err)
	}
	switch {
	case created && b.Password == "":
		b.Logger.Info("created the admin account; its initial password is in the file shown (mode 0600); change it after the first login",
			slog.String("password_file", b.PasswordFile))
	case created:
		b.Logger.Info("created the admin account with the password from RAMPART_ADMIN_PASSWORD")
	case b.Password != "":
		b.Logger.Info("the admin account already exists; RAMPART_ADMIN_PASSWORD is ignored")
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
