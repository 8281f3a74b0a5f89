package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/inference"
	"github.com/rampart-ml/rampart/internal/runtime/onnx"
)

// servePlain is the peer stack's model server: v2 REST JSON over plain
// HTTP with no authentication, decoding with the same codec and running
// the model in-process. It returns its base URL.
func servePlain(ctx context.Context, name string, s *onnx.Session) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/"+name+"/infer", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := inference.DecodeRequest(body, -1, inference.DefaultLimits())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := s.Run(req.Inputs, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := inference.PrepareResponse(name, "1", req.ID, out, req.WantBinary)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", resp.ContentType)
		_, _ = resp.WriteTo(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), nil
}

// issuer is the server's OIDC issuer, from its discovery document.
func (s *server) issuer() (string, error) {
	out, err := s.Do("GET", "/.well-known/openid-configuration", nil, http.StatusOK)
	if err != nil {
		return "", err
	}
	var d struct {
		Issuer string `json:"issuer"`
	}
	return d.Issuer, json.Unmarshal(out, &d)
}

// startOAuth2Proxy starts oauth2-proxy validating bearer JWTs of issuer
// (Rampart's own tokens, audience "rampart") in front of upstream, as
// RECIPES.md's peer stack. It returns the proxy's base URL and a stop func.
func startOAuth2Proxy(bin, issuer, caFile, upstream string) (string, func(), []string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, nil, err
	}
	args := []string{"--http-address=" + addr, "--provider=oidc", "--oidc-issuer-url=" + issuer,
		"--provider-ca-file=" + caFile, "--client-id=rampart", "--client-secret=unused",
		"--redirect-url=http://" + addr + "/oauth2/callback", "--upstream=" + upstream + "/",
		"--email-domain=*", "--cookie-secret=" + hex.EncodeToString(secret[:]), "--cookie-secure=false",
		"--skip-jwt-bearer-tokens=true", "--api-route=^/", "--oidc-email-claim=sub",
		"--insecure-oidc-allow-unverified-email=true", "--request-logging=false", "--auth-logging=false", "--standard-logging=false"}
	// #nosec G204 -- the operator-chosen oauth2-proxy with the benchmark's own arguments
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, nil, err
	}
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	for range 300 {
		time.Sleep(100 * time.Millisecond)
		res, err := http.Get("http://" + addr + "/ping")
		if err != nil {
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return "http://" + addr, stop, []string{"oauth2-proxy " + strings.ReplaceAll(strings.Join(args, " "), hex.EncodeToString(secret[:]), "…")}, nil
		}
	}
	stop()
	return "", nil, nil, errors.New("oauth2-proxy not ready after 30 s")
}

// plainCall checks one request through base with token ("" for none).
func plainCall(base, service, token string, body []byte) error {
	req, err := http.NewRequest("POST", base+"/v2/models/"+service+"/infer", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d %s", base, res.StatusCode, out)
	}
	return nil
}

// peerRows measures the peer stack on m: wrk straight at the plain server
// and through oauth2-proxy with the same bearer token, c connections.
func peerRows(ctx context.Context, o options, srv *server, work string, m model, s *onnx.Session, token string, rampartRPS float64, rep *report) error {
	upstream, err := servePlain(ctx, m.name, s)
	if err != nil {
		return err
	}
	iss, err := srv.issuer()
	if err != nil {
		return err
	}
	proxy, stop, cmds, err := startOAuth2Proxy(o.oauth2Proxy, iss, srv.CAFile, upstream)
	if err != nil {
		return err
	}
	defer stop()
	rep.commands = append(rep.commands, cmds...)
	body, hl, err := restBody(m.input, false)
	if err != nil {
		return err
	}
	if err := plainCall(proxy, m.name, token, body); err != nil {
		return fmt.Errorf("through oauth2-proxy: %w", err)
	}
	if err := plainCall(proxy, m.name, "", body); err == nil {
		return errors.New("oauth2-proxy let a request without a token through")
	}
	for _, x := range []struct{ name, base string }{
		{"unauthenticated plain-HTTP server (in-process ORT)", upstream},
		{"oauth2-proxy v7.8.1 (bearer JWT) → that server", proxy},
	} {
		r, cmds, err := runWRK(o.wrk, work, x.base, m.name, token, body, hl, o.rfLoad, o.duration)
		if err != nil {
			return fmt.Errorf("%s: %w", x.name, err)
		}
		rep.commands, rep.raw = append(rep.commands, cmds...), append(rep.raw, "wrk peer "+x.name+":\n"+r.raw)
		rep.add(row{name: fmt.Sprintf("%s: peer stack: %s, wrk -c %d", m.name, x.name, o.rfLoad), p50: ms(r.p50), p99: ms(r.p99),
			rps: fmt.Sprintf("%.0f/s", r.rps), ratio: fmt.Sprintf("Rampart REST %.2f×", rampartRPS/r.rps)})
	}
	return nil
}
