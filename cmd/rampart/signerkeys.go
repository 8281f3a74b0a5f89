package main

// rampart model keys: the signer keys the registry trusts per domain
// (admin). The server checks the key and the domain; this command only
// reads the key file and shows the server's answers.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	modelKeysSynopsis       = "rampart model keys add|list|revoke ID|delete ID [flags]"
	modelKeysAddSynopsis    = "rampart model keys add --domain DOMAIN|\"*\" --key PUBLIC.pem [--description TEXT] [--not-before RFC3339] [--not-after RFC3339] [--json] [--credentials FILE]\n\nTrusts a public key (ECDSA P-256/P-384/P-521 or Ed25519, PEM) to sign the models of DOMAIN and its subdomains (\"*\": models without a domain)."
	modelKeysListSynopsis   = "rampart model keys list [--domain DOMAIN] [--json] [--credentials FILE]"
	modelKeysRevokeSynopsis = "rampart model keys revoke ID [--credentials FILE]"
	modelKeysDeleteSynopsis = "rampart model keys delete ID [--credentials FILE]\n\nOnly a revoked key can be deleted."
)

// signerKeyView is a signer key as the server shows it.
type signerKeyView struct {
	ID          string    `json:"id"`
	Domain      string    `json:"domain"`
	Algorithm   string    `json:"algorithm"`
	Description string    `json:"description"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	RevokedAt   time.Time `json:"revoked_at"`
}

func modelKeysCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, modelKeysSynopsis, []accessSubcommand{
		{"add", "trust a public key to sign a domain's models (admin)", modelKeysAdd},
		{"list", "list the signer keys (admin)", modelKeysList},
		{"revoke", "stop trusting a key (admin)", modelKeysRevoke},
		{"delete", "remove a revoked key (admin)", modelKeysDelete},
	}, args, stdout, stderr, env)
}

func modelKeysAdd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model keys add", modelKeysAddSynopsis, stdout)
	f.register(fs)
	domain := fs.String("domain", "", `the domain whose models the key may sign, or "*" for models without one (required)`)
	keyFile := fs.String("key", "", "the PEM public key (required)")
	description := fs.String("description", "", "what the key is for")
	notBefore := fs.String("not-before", "", "start of validity, RFC 3339 (default now)")
	notAfter := fs.String("not-after", "", "end of validity, RFC 3339 (default none)")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q: %s", fs.Arg(0), "rampart model keys add --domain DOMAIN --key PUBLIC.pem")
	}
	switch {
	case *domain == "":
		return usageError(`--domain is required: a domain name, or "*" for models without one`)
	case *keyFile == "":
		return usageError("--key is required: the PEM public key file")
	}
	body := map[string]any{"domain": *domain, "description": *description}
	for name, v := range map[string]string{"not_before": *notBefore, "not_after": *notAfter} {
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return usageError("--%s %q: want an RFC 3339 time such as 2027-01-31T00:00:00Z", strings.ReplaceAll(name, "_", "-"), v)
		}
		body[name] = at
	}
	keyPEM, err := readBounded(*keyFile, 64<<10)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	body["public_key"] = string(keyPEM)
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodPost, "/api/v1/signer-keys", body, &raw); err != nil {
		return fmt.Errorf("add signer key: %w", err)
	}
	if *asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	var k signerKeyView
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("add signer key: the server's answer is not the JSON expected: %v", err)
	}
	fmt.Fprintf(stdout, "Added signer key %s (%s) for %s\n", k.ID, k.Algorithm, k.Domain)
	return nil
}

func modelKeysList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return listCommand(ctx, args, stdout, stderr, env, "rampart model keys list", modelKeysListSynopsis, "/api/v1/signer-keys",
		&listFilter{name: "domain", usage: `only the keys of this domain ("*" for those of models without one)`},
		"No signer keys.", "ID\tDOMAIN\tALGORITHM\tNOT BEFORE\tNOT AFTER\tREVOKED\tDESCRIPTION", func(k signerKeyView) string {
			return strings.Join([]string{k.ID, k.Domain, k.Algorithm, formatTime(k.NotBefore), formatTime(k.NotAfter),
				formatTime(k.RevokedAt), k.Description}, "\t")
		})
}

func modelKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model keys revoke", modelKeysRevokeSynopsis, stdout)
	f.register(fs)
	id, done, err := parseFlagsAndArg(fs, args, "the key ID")
	if done || err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	if err := s.authorizedDo(ctx, http.MethodPost, "/api/v1/signer-keys/"+url.PathEscape(id)+"/revoke", nil, nil); err != nil {
		return fmt.Errorf("revoke signer key %q: %w", id, err)
	}
	fmt.Fprintf(stdout, "Revoked signer key %s\n", id)
	return nil
}

func modelKeysDelete(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return deleteCommand(ctx, args, stdout, stderr, env, "rampart model keys delete", modelKeysDeleteSynopsis,
		"the key ID", "/api/v1/signer-keys/", "delete", "signer key")
}
