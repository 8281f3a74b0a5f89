package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/rampart-ml/rampart/internal/app"
	"github.com/rampart-ml/rampart/internal/config"
)

// serve runs `rampart serve`. Structured logs go to stderr; a short banner
// for the person who started it goes to stdout.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	cfg, err := config.Load(args, env, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: the configuration is not valid; nothing was started or written:\n%s",
			errUsage, indent(err.Error()))
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// Libraries that log through the default logger (the OIDC provider's
	// protocol errors) then write the same JSON lines, at the same level.
	slog.SetDefault(log)
	return app.Run(ctx, cfg, log, func(a *app.App) { printBanner(stdout, a) })
}

func printBanner(w io.Writer, a *app.App) {
	fmt.Fprintf(w, "Rampart is serving at %s\n", a.URL())
	if ca := a.CAFile(); ca != "" {
		fmt.Fprintf(w, "  CA certificate (trust this): %s\n", ca)
		fmt.Fprintf(w, "  try: curl --cacert %s %s/healthz\n", ca, a.URL())
	}
	if pw := a.AdminPasswordFile(); pw != "" {
		fmt.Fprintf(w, "  initial admin password:      %s (user \"admin\"; change it after first login)\n", pw)
	}
	fmt.Fprintln(w, "  stop with Ctrl-C (in-flight requests finish first)")
}

func indent(s string) string {
	return "  - " + strings.ReplaceAll(s, "\n", "\n  - ")
}
