package main

// rampart account export: everything the server holds about the
// logged-in account (GDPR Art. 15/20), as the JSON document of
// GET /api/v1/me/export.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

const (
	accountSynopsis       = "rampart account export [flags]"
	accountExportSynopsis = "rampart account export [--credentials FILE]\n\n" +
		"Writes everything the server holds about you to stdout as one JSON document:\n" +
		"profile, service accounts (credential ids, never values), grants, the targets\n" +
		"you created and every audit record that names your pseudonym."
)

// maxExportBytes bounds the export the CLI reads (it holds all of the
// caller's audit records).
const maxExportBytes = 1 << 30

func accountCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, accountSynopsis, []accessSubcommand{
		{"export", "write everything the server holds about you as JSON", accountExport},
	}, args, stdout, stderr, env)
}

func accountExport(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart account export", accountExportSynopsis, stdout)
	f.register(fs)
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	err = s.getStream(ctx, "/api/v1/me/export", func(res *http.Response) error {
		doc.Reset()
		n, err := io.Copy(&doc, io.LimitReader(res.Body, maxExportBytes+1))
		if err != nil {
			return fmt.Errorf("read the export: %w", err)
		}
		if n > maxExportBytes {
			return fmt.Errorf("the export is larger than %d bytes", maxExportBytes)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return writeIndentedJSON(stdout, doc.Bytes())
}
