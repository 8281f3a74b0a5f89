// Package store defines Rampart's persistent state: the interfaces every backend
// implements, the records they hold and the sentinel errors they return.
//
// It owns no storage itself. Backends live in sub-packages (sqlite now, postgres
// later) and must pass the conformance suite in storetest. Callers change state
// only inside InTx, so a change and its audit record commit together or not at all.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record would violate a uniqueness rule (e.g. duplicate name).
	ErrConflict = errors.New("conflict")
	// ErrCorrupt: the database file is damaged or is not a database at all.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrSchemaTooNew: the database was migrated by a newer Rampart than this binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store is closed")
)

// Store is a transactional state store.
type Store interface {
	// InTx runs fn in one read-write transaction. If fn returns an error (or
	// panics) every change it made is rolled back and the error is returned.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the store is open and migrated (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Tx is the set of repositories available inside a transaction.
type Tx interface {
	Accounts() Accounts
	SigningKeys() SigningKeys
}

// SigningKeys holds the keys that sign Rampart's tokens.
type SigningKeys interface {
	// CreateSigningKey inserts k; ErrConflict if the id is taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every stored key, oldest first (by creation,
	// then by end of signing, so a key retired at its successor's creation
	// comes first).
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKeys ends signing at signUntil for every key still signing
	// after it, and publishes them until publishUntil.
	RetireSigningKeys(ctx context.Context, signUntil, publishUntil time.Time) error
	// DeleteExpiredSigningKeys removes keys no longer published at now.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) error
}

// SigningKey is a stored token-signing key. SealedPrivate is the PKCS#8
// private key sealed under the master key; it is never stored in clear.
type SigningKey struct {
	ID            string
	Algorithm     string
	SealedPrivate []byte
	CreatedAt     time.Time
	SignUntil     time.Time
	PublishUntil  time.Time
}

// Accounts holds human user accounts.
type Accounts interface {
	// CreateAccount inserts a; it returns ErrConflict if the ID or name is taken.
	CreateAccount(ctx context.Context, a Account) error
	// AccountByName returns the account called name, or ErrNotFound.
	AccountByName(ctx context.Context, name string) (Account, error)
	// SetPasswordHash replaces the stored hash of account id, or returns ErrNotFound.
	SetPasswordHash(ctx context.Context, id, hash string) error
	// CountAccounts returns how many accounts exist.
	CountAccounts(ctx context.Context) (int, error)
	// LoginState returns the brute-force protection state of account id (the
	// zero LoginState if nothing was recorded), or ErrNotFound if there is no
	// such account.
	LoginState(ctx context.Context, id string) (LoginState, error)
	// SetLoginState replaces the state of account id, or returns ErrNotFound.
	SetLoginState(ctx context.Context, id string, s LoginState) error
}

// LoginState is an account's brute-force protection record: consecutive
// failures, temporary lockouts so far, and the current lock. Zero times
// mean unset.
type LoginState struct {
	Failures    int
	Lockouts    int
	LockedUntil time.Time
	Permanent   bool
	LastFailure time.Time
}

// Account is a human user. PasswordHash is a PHC-format argon2id string; no
// other password form is ever stored.
type Account struct {
	ID           string
	Name         string
	PasswordHash string
	Admin        bool
	// MustChangePassword is set when the password was generated or reset by
	// someone other than the user.
	MustChangePassword bool
	CreatedAt          time.Time
}
