package main

// rampart domains, rampart grants and rampart access: access-control
// administration and questions as the logged-in account. The server
// decides everything (who may see, create or revoke what); these commands
// check only what they can check alone (a flag's spelling) and show the
// server's answers, its refusals included, as they are.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampart-ml/rampart/internal/access"
)

// exitDenied is the exit code of rampart access check when the answer is
// "denied", so scripts can tell a denial (3) from a failure to ask (1) and
// a wrong command line (2).
const exitDenied = 3

// errDenied is what access check returns for a denial it has already
// printed; realMain turns it into exitDenied without a message.
var errDenied = errors.New("access denied")

const (
	domainsSynopsis = "rampart domains list|create NAME|delete NAME [flags]"
	grantsSynopsis  = "rampart grants list|add|revoke ID [flags]"
	accessSynopsis  = "rampart access check --kind KIND [--domain DOMAIN] --privilege PRIVILEGE [--subject ID | --user NAME] [flags]"

	domainsListSynopsis   = "rampart domains list [--json] [--credentials FILE]"
	domainsCreateSynopsis = "rampart domains create NAME [--credentials FILE]"
	domainsDeleteSynopsis = "rampart domains delete NAME [--credentials FILE]"
	grantsListSynopsis    = "rampart grants list [--json] [--credentials FILE]"
	grantsAddSynopsis     = "rampart grants add (--subject ID [--subject-kind user|group|service-account] | --user NAME) --domain DOMAIN --privilege infer|read|all [--json] [--credentials FILE]"
	grantsRevokeSynopsis  = "rampart grants revoke ID [--credentials FILE]"
	accessCheckSynopsis   = "rampart access check --kind KIND [--domain DOMAIN] --privilege infer|read|all [--subject ID | --user NAME] [--json] [--credentials FILE]\n\n" +
		"Prints \"allowed\" or \"denied\", the effective privilege and the grant that decided.\n" +
		"Exit status: 0 allowed, 3 denied, 1 the question could not be asked, 2 a wrong command line.\n" +
		"Without --domain the target has no domain (only grants on \"*\" reach it).\n" +
		"Without --subject or --user the subject is the logged-in account; asking about others is for admins."
)

// accessSubcommand is one subcommand of domains, grants or access.
type accessSubcommand struct {
	name string
	help string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error
}

// runAccessSubcommand picks the subcommand named by args[0], as keysCmd
// does.
func runAccessSubcommand(ctx context.Context, synopsis string, subs []accessSubcommand, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	sub, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, rest = args[0], args[1:]
	}
	for _, c := range subs {
		if c.name == sub {
			return c.run(ctx, rest, stdout, stderr, env)
		}
	}
	switch {
	case sub == "help" || (sub == "" && len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help")):
		fmt.Fprintf(stdout, "Usage: %s\n\n", synopsis)
		tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
		for _, c := range subs {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.help)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "\nEach subcommand takes --help.")
		return nil
	case sub == "":
		return usageError("missing subcommand: %s", synopsis)
	default:
		return usageError("unknown subcommand %q: %s", sub, synopsis)
	}
}

func domainsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, domainsSynopsis, []accessSubcommand{
		{"list", "list the domains you can see (all of them for admins)", domainsList},
		{"create", "create a domain (admin)", domainsCreate},
		{"delete", "delete a domain no grant names (admin)", domainsDelete},
	}, args, stdout, stderr, env)
}

func grantsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, grantsSynopsis, []accessSubcommand{
		{"list", "list the grants you can see: yours, your groups', and those on domains you hold all on", grantsList},
		{"add", "give a user, group or service account a privilege on a domain", grantsAdd},
		{"revoke", "revoke a grant by its id", grantsRevoke},
	}, args, stdout, stderr, env)
}

func accessCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return runAccessSubcommand(ctx, accessSynopsis, []accessSubcommand{
		{"check", "ask whether a subject may act on a target with a privilege, and why (exit 0 allowed, 3 denied)", accessCheck},
	}, args, stdout, stderr, env)
}

// parseFlagsAndArg parses args that hold exactly one positional argument
// (what names it in errors), before, after or among the flags.
func parseFlagsAndArg(fs *flag.FlagSet, args []string, what string) (arg string, done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() == 0 {
		return "", false, usageError("missing %s", what)
	}
	arg = fs.Arg(0)
	if done, err := parseFlags(fs, fs.Args()[1:]); done || err != nil {
		return "", done, err
	}
	if arg == "" {
		return "", false, usageError("%s is empty", what)
	}
	return arg, false, nil
}

// openAccessSession resolves the client flags and opens the stored login.
func openAccessSession(f *clientFlags, env func(string) (string, bool), stderr io.Writer) (*session, error) {
	st, err := f.resolve(env)
	if err != nil {
		return nil, err
	}
	return openLoggedIn(st, stderr)
}

// authorizedDo is do with the stored login's access token, refreshed as
// needed.
func (s *session) authorizedDo(ctx context.Context, method, path string, body, out any) error {
	return s.authorized(ctx, func(token string) error {
		return s.do(ctx, method, path, token, body, out)
	})
}

// writeIndentedJSON prints a server's JSON answer as it is, indented.
func writeIndentedJSON(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// formatTime is how tables show a time: UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// parsePrivilegeFlag accepts the privileges that can be granted or asked
// for; problem says what is wrong otherwise.
func parsePrivilegeFlag(s string) (priv, problem string) {
	switch s {
	case "infer", "read", "all":
		return s, ""
	case "":
		return "", "--privilege is required: infer, read or all"
	default:
		return "", fmt.Sprintf("--privilege %q: the privileges are infer, read and all", s)
	}
}

// ---- domains ----

// domainView is a domain as GET /api/v1/domains shows it.
type domainView struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func domainsList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return listCommand(ctx, args, stdout, stderr, env, "rampart domains list", domainsListSynopsis, "/api/v1/domains", nil,
		"No domains.", "NAME\tCREATED", func(d domainView) string { return d.Name + "\t" + formatTime(d.CreatedAt) })
}

func domainsCreate(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart domains create", domainsCreateSynopsis, stdout)
	f.register(fs)
	name, done, err := parseFlagsAndArg(fs, args, "the domain NAME")
	if done || err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var d domainView
	if err := s.authorizedDo(ctx, http.MethodPost, "/api/v1/domains", map[string]string{"name": name}, &d); err != nil {
		return fmt.Errorf("create domain %q: %w", name, err)
	}
	fmt.Fprintf(stdout, "Created domain %s\n", d.Name)
	return nil
}

func domainsDelete(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return deleteCommand(ctx, args, stdout, stderr, env, "rampart domains delete", domainsDeleteSynopsis,
		"the domain NAME", "/api/v1/domains/", "delete", "domain")
}

// ---- grants ----

// grantView is a grant as the server shows it.
type grantView struct {
	ID          string    `json:"id"`
	SubjectKind string    `json:"subject_kind"`
	SubjectID   string    `json:"subject_id"`
	Domain      string    `json:"domain"`
	Privilege   string    `json:"privilege"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

// describe says what g gives, in one line.
func (g grantView) describe() string {
	return fmt.Sprintf("%s %s has %s on %s", g.SubjectKind, g.SubjectID, g.Privilege, g.Domain)
}

func grantsList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return listCommand(ctx, args, stdout, stderr, env, "rampart grants list", grantsListSynopsis, "/api/v1/grants", nil,
		"No grants.", "ID\tSUBJECT KIND\tSUBJECT\tDOMAIN\tPRIVILEGE\tCREATED", func(g grantView) string {
			return strings.Join([]string{g.ID, g.SubjectKind, g.SubjectID, g.Domain, g.Privilege, formatTime(g.CreatedAt)}, "\t")
		})
}

// listFilter is an optional flag of a list subcommand that becomes the
// query parameter of the same name when it is given.
type listFilter struct{ name, usage string }

// listCommand runs a list subcommand: GET path (with filter's query
// parameter when filter is not nil and its flag is given), then print the
// answer as JSON (--json), as a table with header and one row per item, or
// empty when there are none.
func listCommand[T any](ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool),
	name, synopsis, path string, filter *listFilter, empty, header string, row func(T) string) error {
	var f clientFlags
	fs := newFlagSet(name, synopsis, stdout)
	f.register(fs)
	var filterValue *string
	if filter != nil {
		filterValue = fs.String(filter.name, "", filter.usage)
	}
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if filterValue != nil && *filterValue != "" {
		path += "?" + url.Values{filter.name: {*filterValue}}.Encode()
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	var items []T
	if err := json.Unmarshal(raw, &items); err != nil {
		return fmt.Errorf("GET %s: the server's answer is not the JSON expected: %v", path, err)
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, empty)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

// subjectFlags name a grant's subject, or the subject of a check: by id
// (--subject), or a user by name (--user, resolved through the admin-only
// account list).
type subjectFlags struct {
	id   string
	user string
}

func (f *subjectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.id, "subject", "", "the subject's id (a user's or service account's id, or a group's name)")
	fs.StringVar(&f.user, "user", "", "a user's name instead of --subject: looked up in the account list, which only admins may read")
}

// problem describes what is wrong with the flags, or returns "".
func (f *subjectFlags) problem() string {
	if f.id != "" && f.user != "" {
		return "--subject and --user: choose one"
	}
	return ""
}

// resolve returns the subject's id: --subject as it is, or the id of the
// user named by --user; "" when neither is set.
func (f *subjectFlags) resolve(ctx context.Context, s *session) (string, error) {
	if f.user == "" {
		return f.id, nil
	}
	var list struct {
		Accounts []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"accounts"`
	}
	if err := s.authorizedDo(ctx, http.MethodGet, "/api/v1/accounts", nil, &list); err != nil {
		return "", fmt.Errorf("look up the user %q (only admins may list accounts; others use --subject ID): %w", f.user, err)
	}
	for _, a := range list.Accounts {
		if a.Name == f.user {
			return a.ID, nil
		}
	}
	return "", fmt.Errorf("there is no user named %q", f.user)
}

func grantsAdd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var (
		f   clientFlags
		sub subjectFlags
	)
	fs := newFlagSet("rampart grants add", grantsAddSynopsis, stdout)
	f.register(fs)
	sub.register(fs)
	kind := fs.String("subject-kind", "user", "what --subject names: user, group or service-account")
	domain := fs.String("domain", "", `the domain the grant is on (with its subdomains); "*" for the targets without a domain`)
	privilege := fs.String("privilege", "", "infer, read or all")
	asJSON := fs.Bool("json", false, "print the new grant as JSON")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	var problems []string
	if p := sub.problem(); p != "" {
		problems = append(problems, p)
	}
	if sub.id == "" && sub.user == "" {
		problems = append(problems, "--subject ID or --user NAME is required")
	}
	switch k := access.SubjectKind(*kind); {
	case !k.Valid():
		problems = append(problems, fmt.Sprintf("--subject-kind %q: the kinds are user, group and service-account", *kind))
	case sub.user != "" && k != access.User:
		problems = append(problems, fmt.Sprintf("--user names a user; it cannot be combined with --subject-kind %s", *kind))
	}
	if *domain == "" {
		problems = append(problems, `--domain is required (a domain name, or "*" for the targets without one)`)
	}
	priv, p := parsePrivilegeFlag(*privilege)
	if p != "" {
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return usageError("%s", strings.Join(problems, "; "))
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	id, err := sub.resolve(ctx, s)
	if err != nil {
		return err
	}
	in := grantView{SubjectKind: *kind, SubjectID: id, Domain: *domain, Privilege: priv}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodPost, "/api/v1/grants", in, &raw); err != nil {
		return fmt.Errorf("grant %s on %s to %s %s: %w", in.Privilege, in.Domain, in.SubjectKind, in.SubjectID, err)
	}
	if *asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	var g grantView
	if err := json.Unmarshal(raw, &g); err != nil || g.ID == "" {
		return fmt.Errorf("the server created the grant but its answer names no id: %s", raw)
	}
	fmt.Fprintf(stdout, "Created grant %s: %s\n", g.ID, g.describe())
	return nil
}

func grantsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return deleteCommand(ctx, args, stdout, stderr, env, "rampart grants revoke", grantsRevokeSynopsis,
		"the grant ID (see rampart grants list)", "/api/v1/grants/", "revoke", "grant")
}

// deleteCommand runs a subcommand that removes one thing named by its
// argument: DELETE pathPrefix+ARG; verb is how the user calls it.
func deleteCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool),
	name, synopsis, argDesc, pathPrefix, verb, what string) error {
	var f clientFlags
	fs := newFlagSet(name, synopsis, stdout)
	f.register(fs)
	arg, done, err := parseFlagsAndArg(fs, args, argDesc)
	if done || err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	if err := s.authorizedDo(ctx, http.MethodDelete, pathPrefix+url.PathEscape(arg), nil, nil); err != nil {
		return fmt.Errorf("%s %s %q: %w", verb, what, arg, err)
	}
	fmt.Fprintf(stdout, "%sd %s %s\n", strings.ToUpper(verb[:1])+verb[1:], what, arg)
	return nil
}

// ---- access check ----

// checkResult is the answer of GET /api/v1/access/check.
type checkResult struct {
	Allowed   bool       `json:"allowed"`
	Effective string     `json:"effective"`
	Admin     bool       `json:"admin"`
	Grant     *grantView `json:"grant"`
	Reason    string     `json:"reason"`
}

func accessCheck(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var (
		f   clientFlags
		sub subjectFlags
	)
	fs := newFlagSet("rampart access check", accessCheckSynopsis, stdout)
	f.register(fs)
	sub.register(fs)
	kind := fs.String("kind", "", "the target's kind: "+kindNames())
	domain := fs.String("domain", "", "the target's domain (none: a target without a domain)")
	privilege := fs.String("privilege", "", "the privilege asked for: infer, read or all")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON (the exit status still says allowed or denied)")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	var problems []string
	if p := sub.problem(); p != "" {
		problems = append(problems, p)
	}
	switch {
	case *kind == "":
		problems = append(problems, fmt.Sprintf("--kind is required: %s", kindNames()))
	case !access.Kind(*kind).Valid():
		problems = append(problems, fmt.Sprintf("--kind %q: the kinds are %s", *kind, kindNames()))
	}
	priv, p := parsePrivilegeFlag(*privilege)
	if p != "" {
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return usageError("%s", strings.Join(problems, "; "))
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	id, err := sub.resolve(ctx, s)
	if err != nil {
		return err
	}
	q := url.Values{"kind": {*kind}, "privilege": {priv}}
	if *domain != "" {
		q.Set("domain", *domain)
	}
	if id != "" {
		q.Set("subject", id)
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodGet, "/api/v1/access/check?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	var res checkResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("GET /api/v1/access/check: the server's answer is not the JSON expected: %v", err)
	}
	if *asJSON {
		if err := writeIndentedJSON(stdout, raw); err != nil {
			return err
		}
	} else {
		printCheck(stdout, res)
	}
	if !res.Allowed {
		return errDenied
	}
	return nil
}

func printCheck(w io.Writer, res checkResult) {
	verdict := "denied"
	if res.Allowed {
		verdict = "allowed"
	}
	grant := "none"
	switch {
	case res.Grant != nil:
		grant = res.Grant.ID + " (" + res.Grant.describe() + ")"
	case res.Admin:
		grant = "none: admins hold all on everything"
	}
	fmt.Fprintf(w, "%s\neffective: %s\ngrant:     %s\nreason:    %s\n", verdict, res.Effective, grant, res.Reason)
}

func kindNames() string {
	ks := access.Kinds()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
