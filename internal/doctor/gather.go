package doctor

// Gathering: the I/O half of doctor. Everything here reads; the database is
// opened read-only without the data directory's lock (as `rampart audit
// verify` does), so doctor runs next to a live server.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/datadir"
	"github.com/rampart-ml/rampart/internal/runtime/sandbox"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

// Options says what to check.
type Options struct {
	// DataDir is the server's data directory; "" skips the offline checks
	// (unless the configuration names one).
	DataDir string
	// ConfigFile is the serve configuration file, if any; the environment
	// (RAMPART_*) is read too, as rampart serve would.
	ConfigFile string
	Env        config.Env
	// Server is the server's base URL; "" skips the online check.
	Server string
	// CAFile verifies the server's certificate; default DATA_DIR/tls/ca.pem
	// when a data directory is given, else the system roots.
	CAFile string
	// Sandbox probes the host (sandbox.Probe); a field so tests can fake it.
	Sandbox func() sandbox.Report
	Now     func() time.Time
}

// Run gathers the facts and runs every check that applies.
func Run(ctx context.Context, o Options) []Result {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sandbox == nil {
		o.Sandbox = sandbox.Probe
	}
	if o.Env == nil {
		o.Env = func(string) (string, bool) { return "", false }
	}
	now := o.Now()
	var rs []Result
	cfg := config.Default()
	if o.DataDir != "" || o.ConfigFile != "" {
		var args []string
		source := "environment (RAMPART_*)"
		if o.ConfigFile != "" {
			args = append(args, "--config", o.ConfigFile)
			source = o.ConfigFile + " and the environment"
		}
		if o.DataDir != "" {
			args = append(args, "--data-dir", o.DataDir)
		}
		c, err := config.Load(args, o.Env, io.Discard)
		cfg = c
		rs = append(rs, Config(c, source, err)...)
		if o.DataDir == "" {
			o.DataDir = c.DataDir
		}
	}
	rs = append(rs, Sandbox(o.Sandbox())...)
	if o.DataDir != "" {
		rs = append(rs, dataDir(ctx, o.DataDir, cfg, now)...)
		if o.CAFile == "" && cfg.TLS.CertFile == "" {
			o.CAFile = filepath.Join(o.DataDir, datadir.TLSDir, "ca.pem")
		}
	}
	if o.Server != "" {
		rs = append(rs, server(ctx, o.Server, o.CAFile, now)...)
	}
	return rs
}

func dataDir(ctx context.Context, dir string, cfg config.Config, now time.Time) []Result {
	entries, err := scan(dir)
	if err != nil {
		return []Result{fail("datadir", "give the data directory of rampart serve (--data-dir), and run doctor as its owner", "cannot read %s: %v", dir, err)}
	}
	rs := []Result{}
	uid := -1
	if len(entries) > 0 {
		uid = entries[0].UID // the directory itself: the server's account
	}
	rs = append(rs, Permissions(dir, entries, uid)...)
	pwFile := filepath.Join(dir, datadir.InitialAdminPassword)
	_, err = os.Lstat(pwFile)
	rs = append(rs, InitialPassword(pwFile, err == nil))
	rs = append(rs, tlsFiles(dir, cfg, now)...)
	keys := filepath.Join(dir, datadir.KeysDir)
	rs = append(rs, keyFile("keys.master", filepath.Join(keys, datadir.MasterKeyFile), now,
		"plan a master-key rotation (artifact keys are re-wrapped by artifact.RotateMasterKey)"))
	rs = append(rs, keyFile("keys.audit", filepath.Join(keys, audit.SigningKeyFile), now,
		"replace the audit checkpoint key, keeping the old public key to verify older checkpoints"))
	return append(rs, storeChecks(ctx, dir, cfg, now)...)
}

// scan lists the data directory without following links, the directory
// itself first.
func scan(dir string) ([]FileInfo, error) {
	var out []FileInfo
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, FileInfo{Path: filepath.ToSlash(rel), Mode: fi.Mode(), UID: owner(fi), Symlink: fi.Mode()&fs.ModeSymlink != 0})
		return nil
	})
	return out, err
}

func keyFile(id, file string, now time.Time, fix string) Result {
	fi, err := os.Stat(file)
	if err != nil {
		return MissingFile(id, file, "start rampart serve once: it creates the key")
	}
	return KeyFileAge(id, file, fi.ModTime(), now, fix)
}

func tlsFiles(dir string, cfg config.Config, now time.Time) []Result {
	if cfg.TLS.InsecureHTTP {
		return nil // config.insecure-http has failed already
	}
	var rs []Result
	if cfg.TLS.CertFile != "" {
		rs = append(rs, certFile("tls.operator-cert", cfg.TLS.CertFile, CertWarnBefore, now,
			"replace the certificate and key files; the server reloads them")...)
	} else {
		tlsDir := filepath.Join(dir, datadir.TLSDir)
		rs = append(rs, certFile("tls.ca", filepath.Join(tlsDir, "ca.pem"), CAWarnBefore, now,
			"create a new private CA (move tls/ away and restart) and give the new ca.pem to every client")...)
		rs = append(rs, certFile("tls.server-cert", filepath.Join(tlsDir, "server.pem"), CertWarnBefore, now,
			"restart rampart serve: it renews the certificate from its CA")...)
	}
	if cfg.TLS.ClientCAFile != "" {
		rs = append(rs, certFile("tls.client-ca", cfg.TLS.ClientCAFile, CAWarnBefore, now,
			"replace the client CA file with a current one")...)
	}
	return rs
}

func certFile(id, file string, warnBefore time.Duration, now time.Time, renew string) []Result {
	data, err := os.ReadFile(file) // #nosec G304 -- operator-given path (data dir or configuration)
	if errors.Is(err, fs.ErrNotExist) {
		return []Result{MissingFile(id, file, "start rampart serve once: it creates the private CA and the server certificate")}
	}
	if err != nil {
		return []Result{fail(id, "make it readable by the account running doctor", "cannot read %s: %v", file, err)}
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return []Result{fail(id, renew, "%s holds no PEM certificate", file)}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return []Result{fail(id, renew, "%s: %v", file, err)}
	}
	return Certificate(id, file, cert, now, warnBefore, renew)
}

// storeChecks reads the database read-only, without the lock.
func storeChecks(ctx context.Context, dir string, cfg config.Config, now time.Time) []Result {
	st, err := sqlite.OpenReadOnly(ctx, filepath.Join(dir, datadir.DatabaseFile))
	if err != nil {
		return []Result{fail("store", "start rampart serve once on this data directory, or check the database file", "cannot open the database: %v", err)}
	}
	defer st.Close()
	var (
		signing  []store.SigningKey
		unsigned []string
		versions []store.ModelVersion
		signers  []store.SignerKey
		grants   []store.Grant
		accounts []store.Account
	)
	err = st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if signing, err = tx.SigningKeys().ListSigningKeys(ctx); err != nil {
			return err
		}
		m := tx.Models()
		if unsigned, err = m.UnsignedAllowed(ctx); err != nil {
			return err
		}
		models, err := m.ListModels(ctx)
		if err != nil {
			return err
		}
		for _, md := range models {
			vs, err := m.ListModelVersions(ctx, md.ID)
			if err != nil {
				return err
			}
			versions = append(versions, vs...)
		}
		if signers, err = tx.SignerKeys().ListSignerKeys(ctx); err != nil {
			return err
		}
		if grants, err = tx.Grants().ListGrants(ctx); err != nil {
			return err
		}
		accounts, err = tx.Accounts().ListAccounts(ctx)
		return err
	})
	if err != nil {
		return []Result{fail("store", "check the database file", "cannot read the database: %v", err)}
	}
	rs := []Result{
		SigningKeys(signing, cfg.Identity.SigningKeyRotation, now),
		auditChain(ctx, st, dir),
	}
	rs = append(rs, Registry(unsigned, versions, signers, now)...)
	return append(rs, Grants(grants), Admins(accounts))
}

func auditChain(ctx context.Context, st store.Store, dir string) Result {
	pubFile := filepath.Join(dir, datadir.KeysDir, audit.PublicKeyFile)
	pub, err := audit.LoadPublicKey(pubFile)
	if err != nil {
		return fail("audit.chain", "restore "+pubFile+" from your copy of the audit public key", "cannot load the audit public key: %v", err)
	}
	return AuditChain(audit.Verify(ctx, st, pub))
}

// server fetches /healthz over TLS, verifying the certificate with caFile
// (or the system roots), and reports what the connection looked like.
func server(ctx context.Context, url, caFile string, now time.Time) []Result {
	base := strings.TrimRight(url, "/")
	if strings.HasPrefix(base, "http://") {
		return []Result{fail("server.tls", "serve TLS (drop insecure-http) and use an https:// URL", "%s is plain HTTP", base)}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS10} // #nosec G402 -- accept old versions so the check can report them
	if caFile != "" {
		pemData, err := os.ReadFile(caFile) // #nosec G304 -- operator-given path
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return []Result{fail("server.ca", "give the CA with --ca", "cannot read %s: %v", caFile, err)}
		}
		if err == nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemData) {
				return []Result{fail("server.ca", "give a PEM CA certificate with --ca", "%s holds no PEM certificate", caFile)}
			}
			tc.RootCAs = pool
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return []Result{fail("server.healthz", "give the server's base URL, e.g. https://127.0.0.1:8443", "bad URL %q: %v", url, err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return []Result{fail("server.healthz", "check that the server runs and that its certificate verifies with the CA given (--ca)", "GET %s/healthz: %v", base, err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	var rs []Result
	if resp.StatusCode != http.StatusOK {
		rs = append(rs, warn("server.healthz", "look at the server's log", "GET %s/healthz: %s", base, resp.Status))
	} else {
		rs = append(rs, pass("server.healthz", "GET %s/healthz: %s", base, resp.Status))
	}
	if resp.TLS == nil {
		return append(rs, fail("server.tls", "serve TLS", "%s answered without TLS", base))
	}
	return append(rs, ServerTLS(base, *resp.TLS, now)...)
}
