// Package identity_test holds the identity issue's load benchmarks, run
// against a real server (TLS, SQLite, the whole middleware chain) on
// loopback. They are benchmarks, not tests: `make bench` runs them.
package identity_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/identity/hashworker"
	"github.com/rampart-ml/rampart/internal/pki"
)

// TestMain lets this test binary serve as a password hash worker, as the
// rampart binary does.
func TestMain(m *testing.M) {
	hashworker.Main()
	os.Exit(m.Run())
}

const newAdminPassword = "bench-operator-passphrase-violet-orbit-42"

// adminToken changes the generated admin password and logs in again.
func adminToken(b *testing.B, s *apptest.Server) string {
	tok := s.Login(b, "admin", s.AdminPassword)
	res := s.Do(b, "POST", "/api/v1/me/password", tok.AccessToken, map[string]string{
		"current_password": s.AdminPassword, "new_password": newAdminPassword,
	})
	if res.StatusCode != http.StatusNoContent {
		b.Fatalf("change admin password: %d %s", res.StatusCode, res.Body)
	}
	return s.Login(b, "admin", newAdminPassword).AccessToken
}

// BenchmarkClientCredentials measures token issuance for a service account
// (client_credentials, HTTP Basic secret) against GET /healthz through the
// same TLS server and clients ("bare"), and reports tokens per second.
// Goal (identity issue): ≥ 500 tokens/s on 2 cores.
func BenchmarkClientCredentials(b *testing.B) {
	s := apptest.Start(b)
	admin := adminToken(b, s)
	res := s.Do(b, "POST", "/api/v1/service-accounts", admin, map[string]string{"name": "bench-robot"})
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("create service account: %d %s", res.StatusCode, res.Body)
	}
	var sa struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(res.Body, &sa); err != nil {
		b.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()

	run := func(b *testing.B, req func() (*http.Request, error)) {
		b.SetParallelism(4)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := req()
				if err != nil {
					b.Error(err)
					return
				}
				res, err := s.Client.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("status %d", res.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	b.Run("bare", func(b *testing.B) {
		run(b, func() (*http.Request, error) { return http.NewRequest("GET", s.URL+"/healthz", nil) })
	})
	b.Run("client_credentials", func(b *testing.B) {
		run(b, func() (*http.Request, error) {
			r, err := http.NewRequest("POST", s.URL+"/oauth/token", strings.NewReader(form))
			if err == nil {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth(sa.ID, sa.ClientSecret)
			}
			return r, err
		})
	})
}

// BenchmarkAPIUnderLoginFlood measures the latency of authenticated API
// calls (GET /api/v1/me, one client, one at a time) on an idle server
// ("bare") and while a flood of 1000 wrong-password logins per second hits
// POST /api/v1/login ("flood"). The flood's source limit is lifted (as if it
// came from many addresses), so every attempt reaches the argon2id
// concurrency limit — the defence under test. Reports p50/p99 in µs.
// Goal (identity issue): flood p99 within 2× the idle p99.
func BenchmarkAPIUnderLoginFlood(b *testing.B) {
	s := apptest.Start(b, apptest.HashWorkers, func(c *config.Config) {
		c.Identity.BruteForce.Source.Burst = 1 << 20
		c.Identity.BruteForce.Source.Refill = time.Microsecond
	})
	admin := adminToken(b, s)
	probe := func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			res := s.Do(b, "GET", "/api/v1/me", admin, nil)
			lat = append(lat, time.Since(t0))
			if res.StatusCode != http.StatusOK {
				b.Fatalf("probe: %d %s", res.StatusCode, res.Body)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("bare", probe)
	b.Run("flood", func(b *testing.B) {
		// The attacker is another process, as it would be in life; it
		// still shares this machine's CPUs with the server.
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoginFloodGenerator$")
		cmd.Env = append(os.Environ(), "RAMPART_FLOOD_URL="+s.URL, "RAMPART_FLOOD_CA="+s.App.CAFile())
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // let the flood build up
		probe(b)
		stdin.Close() // tells the generator to stop
		if err := cmd.Wait(); err != nil {
			b.Fatalf("flood generator: %v\n%s", err, out.String())
		}
		var sent, busy float64
		if _, err := fmt.Sscanf(lastLine(out.String()), "sent %g busy %g", &sent, &busy); err == nil && sent > 0 {
			b.ReportMetric(busy/sent*100, "%busy")
		}
	})
}

// lastLine returns the generator's summary line ("sent N busy M").
func lastLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "sent ") {
			return l
		}
	}
	return ""
}

// TestLoginFloodGenerator is the flood of BenchmarkAPIUnderLoginFlood,
// run in its own process; it does nothing unless started by it. It sends
// 1000 wrong-password logins per second until stdin closes.
func TestLoginFloodGenerator(t *testing.T) {
	target := os.Getenv("RAMPART_FLOOD_URL")
	if target == "" {
		t.Skip("started only by BenchmarkAPIUnderLoginFlood")
	}
	pool, err := pki.CertPool(os.Getenv("RAMPART_FLOOD_CA"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64}}
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	var sent, busy atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			wg.Wait()
			fmt.Printf("sent %d busy %d\n", sent.Load(), busy.Load())
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"username":"user-%d","password":"wrong-password-%d"}`, i%100, i)
			res, err := client.Post(target+"/api/v1/login", "application/json", strings.NewReader(body))
			sent.Add(1)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				busy.Add(1)
			}
		}()
	}
}
