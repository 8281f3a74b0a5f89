package app

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/pki"
)

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP.ShutdownTimeout = 10 * time.Second
	return cfg
}

func client(t *testing.T, a *App) *http.Client {
	pool, err := pki.CertPool(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// SIGTERM/SIGINT cancel the context: the request already being handled must
// complete, new connections must be refused, and Serve must return nil.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, err := New(ctx, testConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	a.API().Handle(httpapi.Route{Pattern: "GET /slow", Public: true, Handler: func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		httpapi.WriteJSON(w, 200, map[string]string{"done": "yes"})
		return nil
	}})
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx) }()

	c := client(t, a)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := c.Get(a.URL() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- result{body: string(b)}
	}()
	<-entered
	stop() // as on SIGTERM

	// Readiness flips and the listener closes while the slow request runs.
	deadline := time.Now().Add(5 * time.Second)
	for {
		fresh := client(t, a)
		_, err := fresh.Get(a.URL() + "/healthz")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still accepts new connections after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || !strings.Contains(r.body, `"yes"`) {
		t.Fatalf("in-flight request was not finished: %q %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownTimeoutIsReported(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.HTTP.ShutdownTimeout = 200 * time.Millisecond
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	a.API().Handle(httpapi.Route{Pattern: "GET /stuck", Public: true, Handler: func(http.ResponseWriter, *http.Request) error {
		close(entered)
		<-release
		return nil
	}})
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	go func() { _, _ = client(t, a).Get(a.URL() + "/stuck") }()
	<-entered
	stop()
	if err := <-served; err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("Serve = %v, want a shutdown timeout error", err)
	}
}

func TestReadyOnlyWhenStoreIsUp(t *testing.T) {
	t.Parallel()
	a, err := New(context.Background(), testConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = a.Serve(ctx) }()
	c := client(t, a)
	check := func(want int) {
		t.Helper()
		res, err := c.Get(a.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("/readyz = %d, want %d", res.StatusCode, want)
		}
	}
	check(200)
	a.store.Close()
	check(503)
}

func TestCertHosts(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Listen = "rampart.internal:8443"
	cfg.TLS.Hosts = []string{"10.1.2.3"}
	got := certHosts(cfg)
	if strings.Join(got, ",") != "10.1.2.3,rampart.internal" {
		t.Errorf("certHosts = %v", got)
	}
	cfg.Listen = "0.0.0.0:8443"
	if len(certHosts(cfg)) != 2 {
		t.Errorf("listening on all interfaces should add the host name: %v", certHosts(cfg))
	}
}
