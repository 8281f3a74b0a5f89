// Package app is the composition root: it builds every subsystem from a
// validated config.Config, serves, and shuts down gracefully. It is the only
// package that knows how the pieces fit together; none of them import it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rampart-ml/rampart/internal/artifact"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/authz"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity/hashworker"
	"github.com/rampart-ml/rampart/internal/identity/password"
	"github.com/rampart-ml/rampart/internal/pki"
	"github.com/rampart-ml/rampart/internal/registry"
	"github.com/rampart-ml/rampart/internal/runtime/supervisor"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
	"github.com/rampart-ml/rampart/internal/version"
)

// maxHeaderBytes bounds request headers (net/http's default is 1 MiB).
const maxHeaderBytes = 64 << 10

// App is a running Rampart server.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	dir      *datadir.Dir
	store    store.Store
	api      *httpapi.Server
	tls      *pki.Manager
	listener net.Listener
	server   *http.Server
	hashers  *hashworker.Pool // nil when hashing in process
	authz    *authz.Service
	sealer   *secrets.Sealer
	// auditSigner signs audit checkpoints.
	auditSigner *audit.Signer
	// recorder writes audit records for every subsystem; follower copies
	// them and signs checkpoints, reading through auditReader.
	recorder       *audit.Recorder
	follower       *audit.Follower
	sampler        *audit.Sampler
	auditReader    *sqlite.Store
	stopPruning    context.CancelFunc
	pruned         chan struct{}
	closeAuditOnce sync.Once
	// loader materializes verified model versions for the runtime.
	loader *registry.Loader
	// artifacts is the encrypted blob store of model files.
	artifacts artifact.Store
	// supervisor runs the model services' workers.
	supervisor *supervisor.Supervisor
	opts       options
}

// Option changes how New builds the app. Options exist for tests (fault
// injection); the binary passes none.
type Option func(*options)

type options struct {
	wrapArtifacts func(artifact.Store) artifact.Store
	noRuntime     bool
}

// WithoutRuntime leaves the supervisor stopped: the services API records
// every change, but no worker starts. For tests of the API alone, whose
// model versions have no real blobs behind them.
func WithoutRuntime() Option {
	return func(o *options) { o.noRuntime = true }
}

// WithArtifactStore wraps the artifact store the registry uses, so a test
// can make it fail (a full disk) or pause it (a race).
func WithArtifactStore(wrap func(artifact.Store) artifact.Store) Option {
	return func(o *options) { o.wrapArtifacts = wrap }
}

// New opens the data directory, the store and TLS, bootstraps the admin
// account and starts listening; it does not serve yet. On error it releases
// whatever it had opened.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log}
	for _, o := range opts {
		o(&a.opts)
	}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if cfg.TLS.InsecureHTTP {
		log.Warn("INSECURE: --insecure-http is set; TLS is off and credentials, tokens and tensors cross the network in clear text")
	}
	if cfg.Identity.AllowWeakHashing {
		log.Warn("INSECURE: --insecure-weak-password-hashing is set; stolen password hashes are cheap to crack")
	}

	// The embedded password blocklist is checked now so a damaged binary
	// fails at start, not at the first password change.
	if err := password.LoadBlocklist(); err != nil {
		return nil, err
	}
	if a.dir, err = datadir.Open(cfg.DataDir); err != nil {
		return nil, err
	}
	// Assign only on success: a nil *sqlite.Store in the interface field
	// would not be nil to Close.
	st, err := sqlite.Open(ctx, a.dir.Path(datadir.DatabaseFile))
	if err != nil {
		return nil, err
	}
	a.store = st
	if !cfg.TLS.InsecureHTTP {
		tlsDir, err := a.dir.MkdirPrivate(datadir.TLSDir)
		if err != nil {
			return nil, err
		}
		if a.tls, err = pki.New(pki.Options{
			Dir:          tlsDir,
			Hosts:        certHosts(cfg),
			CertFile:     cfg.TLS.CertFile,
			KeyFile:      cfg.TLS.KeyFile,
			ClientCAFile: cfg.TLS.ClientCAFile,
			Logger:       log,
		}); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	if a.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	keysDir, err := a.openKeys()
	if err != nil {
		return nil, err
	}
	if err := a.openAudit(keysDir, reg); err != nil {
		return nil, err
	}
	auditor, err := newHTTPAuditor(a.recorder)
	if err != nil {
		return nil, err
	}
	id, err := a.newIdentity(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a.api = httpapi.New(httpapi.Options{
		Logger:          log,
		MaxRequestBytes: cfg.HTTP.MaxRequestBytes,
		Registerer:      reg,
		Gatherer:        reg,
		Ready:           a.store.Ping,
		Authenticators:  []httpapi.Authenticator{id.authn},
		// Role-level checks per route; per-target decisions are made by
		// handlers through authz.Service.Require. Handlers record their
		// changes in the audit log in the same transaction; the auditor
		// step records refusals and stops requests while the log is down.
		Authorizer: httpapi.RoleAuthorizer{},
		Auditor:    auditor,
	})
	id.provider.Mount(a.api)
	id.accounts.Mount(a.api)
	a.authz = authz.New(authz.Options{Store: a.store, Cache: authz.NewCache(a.store, nil), Directory: id.directory,
		Recorder: a.recorder, DomainDeleted: a.shredDomain})
	a.authz.Mount(a.api)
	keys := registry.NewKeysAPI(registry.KeysOptions{Store: a.store, Recorder: a.recorder})
	keys.Mount(a.api)
	if err := a.mountModels(); err != nil {
		return nil, err
	}
	if err := a.mountRuntime(reg); err != nil {
		return nil, err
	}
	a.mountAudit()

	h := cfg.HTTP
	a.server = &http.Server{
		Handler:           a.api.Handler(),
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http's own messages (TLS handshake errors, bad requests) name
		// client addresses, which are personal data: debug level only.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if a.tls != nil {
		a.server.TLSConfig = a.tls.TLSConfig()
	}
	if err := a.startAudit(); err != nil {
		return nil, err
	}
	if !a.opts.noRuntime {
		if err := a.startRuntime(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// API returns the HTTP API so subsystems can mount their routes.
func (a *App) API() *httpapi.Server { return a.api }

// Authz is the access-control service target handlers ask (Require).
func (a *App) Authz() *authz.Service { return a.authz }

// URL is the base URL clients use.
func (a *App) URL() string {
	scheme := "https"
	if a.tls == nil {
		scheme = "http"
	}
	return scheme + "://" + a.listener.Addr().String()
}

// CAFile is the certificate clients should trust ("" with operator
// certificates or plain HTTP).
func (a *App) CAFile() string {
	if a.tls == nil {
		return ""
	}
	return a.tls.CAFile()
}

// AdminPasswordFile is where a generated admin password is, if it still exists.
func (a *App) AdminPasswordFile() string {
	p := a.dir.Path(datadir.InitialAdminPassword)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Serve serves until ctx is cancelled, then stops accepting, lets in-flight
// requests finish (up to the shutdown timeout) and returns.
func (a *App) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if a.tls != nil {
			errc <- a.server.ServeTLS(a.listener, "", "")
		} else {
			errc <- a.server.Serve(a.listener)
		}
	}()
	a.log.Info("listening", slog.String("url", a.URL()), slog.String("version", version.Version))

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing in-flight requests", slog.Duration("timeout", a.cfg.HTTP.ShutdownTimeout))
	a.api.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := a.server.Shutdown(sctx); err != nil {
		_ = a.server.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish in %v: %w", a.cfg.HTTP.ShutdownTimeout, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.supervisor.Close()
	a.closeAudit()
	a.log.Info("stopped")
	return nil
}

// Close releases the listener, store and data directory lock.
func (a *App) Close() error {
	var errs []error
	if a.listener != nil {
		if err := a.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if a.hashers != nil {
		a.hashers.Close()
	}
	if a.supervisor != nil {
		a.supervisor.Close()
	}
	a.closeAudit()
	if a.store != nil {
		if err := a.store.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if a.dir != nil {
		errs = append(errs, a.dir.Close())
	}
	return errors.Join(errs...)
}

// certHosts are the names the generated certificate must cover: the listen
// host (or this machine's name when listening on all interfaces) and any
// --tls-san; pki adds localhost and the loopback addresses.
func certHosts(cfg config.Config) []string {
	hosts := append([]string(nil), cfg.TLS.Hosts...)
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Skip a host name a certificate cannot carry (e.g. with "_")
		// rather than refuse to start.
		if name, err := os.Hostname(); err == nil && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == "" {
			hosts = append(hosts, name)
		}
	} else {
		hosts = append(hosts, host)
	}
	return hosts
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "rampart_build_info",
		Help:        "Always 1; labels describe the running binary.",
		ConstLabels: prometheus.Labels{"version": version.Version, "commit": version.Commit},
	})
	g.Set(1)
	return g
}

// Run builds the app, calls started (for a human-readable banner) and serves
// until ctx is cancelled.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, started func(*App)) error {
	start := time.Now()
	a, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	log.Debug("started", slog.Duration("startup", time.Since(start)))
	if started != nil {
		started(a)
	}
	return a.Serve(ctx)
}

// ModelLoader writes verified model versions to disk for the runtime
// (verify-at-load; see registry.Loader).
func (a *App) ModelLoader() *registry.Loader { return a.loader }

// shredDomain deletes a deleted domain's data key and whatever blobs of
// it remain: they can never be decrypted again. The domain's models are
// gone already (a domain named by a model cannot be deleted).
func (a *App) shredDomain(ctx context.Context, name string) {
	if a.artifacts == nil {
		return
	}
	if err := a.artifacts.DeleteDomain(ctx, name); err != nil {
		a.log.Error("crypto-shred the deleted domain's artefacts (retried at the next deletion of the domain name)",
			slog.String("domain", name), slog.String("error", err.Error()))
		return
	}
	a.log.Info("deleted the domain's artefact key and blobs", slog.String("domain", name))
}

// mountModels opens the artifact store and a staging directory emptied
// of what an earlier process left mid-upload, and mounts the model API.
func (a *App) mountModels() error {
	artDir, err := a.dir.MkdirPrivate(datadir.ArtifactsDir)
	if err != nil {
		return err
	}
	fsStore, err := artifact.NewFS(artDir, a.sealer)
	if err != nil {
		return fmt.Errorf("open artifact store: %w", err)
	}
	var arts artifact.Store = fsStore
	if a.opts.wrapArtifacts != nil {
		arts = a.opts.wrapArtifacts(arts)
	}
	a.artifacts = arts
	staging := a.dir.Path(datadir.StagingDir)
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("empty staging directory: %w", err)
	}
	if staging, err = a.dir.MkdirPrivate(datadir.StagingDir); err != nil {
		return err
	}
	a.loader = registry.NewLoader(a.store, arts, a.recorder)
	registry.NewModelsAPI(registry.ModelsOptions{
		Store: a.store, Artifacts: arts, Authz: a.authz, Recorder: a.recorder, StagingDir: staging,
	}).Mount(a.api)
	return nil
}
