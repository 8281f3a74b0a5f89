package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/accounts"
	"github.com/rampart-ml/rampart/internal/identity/authn"
	"github.com/rampart-ml/rampart/internal/identity/federation"
	"github.com/rampart-ml/rampart/internal/identity/hashworker"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
)

// identityParts are the identity subsystem's pieces the app mounts.
type identityParts struct {
	provider  *provider.Provider
	authn     *authn.Authenticator
	accounts  *accounts.Service
	directory *identity.Directory
}

// newIdentity creates the admin account on first start and builds the
// OpenID provider, the authentication middleware and account management
// over the store and the master key. Every piece that changes identity
// state records it with a.recorder, so it runs after openAudit.
func (a *App) newIdentity(ctx context.Context, cfg config.Config, log *slog.Logger) (identityParts, error) {
	ic := cfg.Identity
	if err := identity.EnsureAdmin(ctx, a.store, identity.Bootstrap{
		Password:     cfg.AdminPassword,
		PasswordFile: a.dir.Path(datadir.InitialAdminPassword),
		Params:       ic.Argon2,
		Logger:       log,
		Recorder:     a.recorder,
	}); err != nil {
		return identityParts{}, err
	}
	sealer := a.sealer
	ring, err := signingkeys.New(a.store, sealer, signingkeys.Options{
		RotateEvery:      ic.SigningKeyRotation,
		MaxTokenLifetime: ic.AccessTokenLifetime,
		Recorder:         a.recorder,
	})
	if err != nil {
		return identityParts{}, err
	}
	// Make sure a key exists before the JWKS is first served.
	if _, err := ring.Signing(ctx); err != nil {
		return identityParts{}, fmt.Errorf("signing keys: %w", err)
	}
	var hasher identity.Hasher = identity.InProcess{}
	switch {
	case ic.HashProcesses && !hashworker.Supported():
		// Only a binary that calls hashworker.Main can be re-executed as
		// a worker (rampart does; most test binaries do not).
		log.Debug("password hash workers unavailable in this binary; hashing in process")
	case ic.HashProcesses:
		exe, err := os.Executable()
		if err != nil {
			return identityParts{}, fmt.Errorf("password hash workers: %w", err)
		}
		if a.hashers, err = hashworker.NewPool(exe, ic.BruteForce.Hash.Concurrency); err != nil {
			return identityParts{}, err
		}
		hasher = a.hashers
	}
	login, err := identity.NewPasswordLogin(a.store, identity.LoginOptions{
		Hasher: hasher, Params: ic.Argon2, BruteForce: ic.BruteForce, Sealer: sealer, Recorder: a.recorder,
	})
	if err != nil {
		return identityParts{}, err
	}
	dir := identity.NewDirectory(a.store, 0, nil)
	rev := identity.NewRevocations(a.store, 0, nil)
	issuer := ic.Issuer
	if issuer == "" {
		issuer = a.URL()
	}
	p, err := provider.New(provider.Options{
		Issuer: issuer, Store: a.store, Keys: ring, Login: login, Directory: dir, Revocations: rev, Sealer: sealer,
		Recorder:            a.recorder,
		AccessTokenLifetime: ic.AccessTokenLifetime, SessionLifetime: ic.SessionLifetime,
		Insecure: cfg.TLS.InsecureHTTP, Logger: log,
	})
	if err != nil {
		return identityParts{}, fmt.Errorf("identity: %w", err)
	}
	ao := authn.Options{
		Issuer: issuer, Keys: ring, Revocations: rev, Directory: dir,
		ClientCerts: cfg.TLS.ClientCAFile != "",
	}
	if len(ic.Federation) > 0 {
		fed, err := federation.New(federation.Options{Issuers: ic.Federation, Logger: log})
		if err != nil {
			return identityParts{}, fmt.Errorf("federation: %w", err)
		}
		ao.Federated = fed
		ao.Rejected = func(err error) bool {
			var re *federation.RejectedError
			return errors.As(err, &re)
		}
	}
	au := authn.New(ao)
	acc := accounts.New(accounts.Options{
		Store: a.store, Login: login, Directory: dir, Revocations: rev, Sealer: sealer, Keys: ring,
		Params: ic.Argon2, MinPasswordLength: ic.PasswordMinLength, Logger: log, Recorder: a.recorder,
	})
	return identityParts{provider: p, authn: au, accounts: acc, directory: dir}, nil
}
