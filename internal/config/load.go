package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-ml/rampart/internal/identity/federation"
)

// EnvPrefix prefixes the environment variable of every flag:
// --data-dir reads RAMPART_DATA_DIR.
const EnvPrefix = "RAMPART_"

// maxConfigFileBytes bounds the YAML file read at start.
const maxConfigFileBytes = 1 << 20

// ErrHelp is returned by Load when -h or --help was given; usage has been
// written to the output.
var ErrHelp = flag.ErrHelp

// Env looks up an environment variable (os.LookupEnv in production).
type Env func(key string) (string, bool)

// option is one setting, reachable as a flag, an environment variable and a
// YAML key of the same name.
type option struct {
	name  string
	usage string
	value *value
}

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load builds the serve configuration from args, env and the YAML file named
// by --config/RAMPART_CONFIG. Precedence: flags > environment > file >
// defaults. It returns every problem it finds (parse and Validate) at once.
// Usage goes to out when -h/--help is given.
func Load(args []string, env Env, out io.Writer) (Config, error) {
	c := Default()
	opts := options(&c)

	// Flag values record bad input instead of stopping the parse, so every
	// problem is reported at once.
	var problems []error
	fs := flag.NewFlagSet("rampart serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage printed by us
	for _, o := range opts {
		fs.Var(recorder{o, &problems}, o.name, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(out)
			return c, ErrHelp
		}
		return c, errors.Join(append([]error{fmt.Errorf("%v (see rampart serve --help)", err)}, problems...)...)
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected argument %q: serve takes only flags", fs.Arg(0)))
	}
	fromFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fromFlags[f.Name] = true })

	// The config file's own location may come from the environment.
	if !fromFlags["config"] {
		if v, ok := env(EnvName("config")); ok {
			c.ConfigFile = v
		}
	}
	var fromFile map[string]string
	if c.ConfigFile != "" {
		var err error
		if fromFile, err = readFile(c.ConfigFile, opts); err != nil {
			problems = append(problems, err)
		}
	}
	for _, o := range opts {
		if fromFlags[o.name] || o.name == "config" {
			continue
		}
		if v, ok := env(EnvName(o.name)); ok {
			if err := o.value.Set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", EnvName(o.name), err))
			}
		} else if v, ok := fromFile[o.name]; ok {
			if err := o.value.Set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s: %s: %w", c.ConfigFile, o.name, err))
			}
		}
	}
	if pw, ok := env(EnvName("admin-password")); ok {
		c.AdminPassword = pw
	}
	// Values that failed to parse kept their defaults, so Validate adds only
	// new problems.
	return c, errors.Join(append(problems, c.Validate())...)
}

// options binds every setting of c.
func options(c *Config) []option {
	str := func(p *string) func(string) error { return func(s string) error { *p = s; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 30s or 5m", s)
			}
			*p = d
			return nil
		}
	}
	o := []option{
		{name: "config", usage: "YAML file with settings (keys are the flag names)", value: &value{set: str(&c.ConfigFile)}},
		{name: "data-dir", usage: "directory for state, keys and certificates (created 0700; required)", value: &value{set: str(&c.DataDir)}},
		{name: "master-key-file", usage: "the master key every stored secret and artefact key is sealed under: a 32-byte file (0600) the operator keeps, e.g. on a secrets mount (default: DATA_DIR/keys/master.key, created on first start)", value: &value{set: str(&c.MasterKeyFile)}},
		{name: "listen", usage: "address to listen on, HOST:PORT", value: &value{set: str(&c.Listen), show: func() string { return c.Listen }}},
		{name: "tls-cert", usage: "PEM certificate chain to serve instead of the private CA's", value: &value{set: str(&c.TLS.CertFile)}},
		{name: "tls-key", usage: "PEM private key for --tls-cert", value: &value{set: str(&c.TLS.KeyFile)}},
		{name: "client-ca", usage: "PEM CA bundle; clients presenting certificates must chain to it (mutual TLS)", value: &value{set: str(&c.TLS.ClientCAFile)}},
		{name: "tls-san", usage: "extra comma-separated host names/IPs for the generated server certificate", value: &value{set: func(s string) error {
			c.TLS.Hosts = splitList(s)
			return nil
		}}},
		{name: "insecure-http", usage: "serve plain HTTP without TLS (INSECURE; logs a warning at every start)", value: &value{bool: true, set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			c.TLS.InsecureHTTP = b
			return nil
		}}},
		{name: "log-level", usage: "debug, info, warn or error", value: &value{set: func(s string) error {
			return c.LogLevel.UnmarshalText([]byte(s))
		}, show: func() string { return strings.ToLower(c.LogLevel.String()) }}},
		{name: "max-request-bytes", usage: "largest request body accepted (e.g. 1MiB)", value: &value{set: func(s string) error {
			n, err := parseBytes(s)
			c.HTTP.MaxRequestBytes = n
			return err
		}, show: func() string { return formatBytes(c.HTTP.MaxRequestBytes) }}},
		{name: "read-header-timeout", usage: "time allowed for a client to send request headers (slowloris guard)", value: &value{set: dur(&c.HTTP.ReadHeaderTimeout), show: func() string { return c.HTTP.ReadHeaderTimeout.String() }}},
		{name: "read-timeout", usage: "time allowed to read a whole request", value: &value{set: dur(&c.HTTP.ReadTimeout), show: func() string { return c.HTTP.ReadTimeout.String() }}},
		{name: "write-timeout", usage: "time allowed to write a response", value: &value{set: dur(&c.HTTP.WriteTimeout), show: func() string { return c.HTTP.WriteTimeout.String() }}},
		{name: "idle-timeout", usage: "how long an idle keep-alive connection stays open", value: &value{set: dur(&c.HTTP.IdleTimeout), show: func() string { return c.HTTP.IdleTimeout.String() }}},
		{name: "shutdown-timeout", usage: "how long SIGTERM waits for in-flight requests", value: &value{set: dur(&c.HTTP.ShutdownTimeout), show: func() string { return c.HTTP.ShutdownTimeout.String() }}},
	}
	o = append(o, identityOptions(c, str, dur)...)
	o = append(o, auditOptions(c, str, dur)...)
	return append(o, inferenceOptions(c, str)...)
}

// identityOptions bind the Identity settings.
func identityOptions(c *Config, str func(*string) func(string) error, dur func(*time.Duration) func(string) error) []option {
	id := &c.Identity
	bf := &id.BruteForce
	showDur := func(d *time.Duration) func() string { return func() string { return d.String() } }
	num := func(p *int) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			*p = n
			return nil
		}
	}
	showNum := func(p *int) func() string { return func() string { return strconv.Itoa(*p) } }
	u32 := func(p *uint32) func(string) error {
		return func(s string) error {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			*p = uint32(n)
			return nil
		}
	}
	return []option{
		{name: "issuer", usage: "public base URL clients reach the server at, used as the token issuer (default: the listen URL)", value: &value{set: str(&id.Issuer)}},
		{name: "access-token-lifetime", usage: "lifetime of access and ID tokens", value: &value{set: dur(&id.AccessTokenLifetime), show: showDur(&id.AccessTokenLifetime)}},
		{name: "session-lifetime", usage: "how long a login stays alive through refresh tokens", value: &value{set: dur(&id.SessionLifetime), show: showDur(&id.SessionLifetime)}},
		{name: "signing-key-rotation", usage: "how long a token-signing key signs before a new one replaces it", value: &value{set: dur(&id.SigningKeyRotation), show: showDur(&id.SigningKeyRotation)}},
		{name: "password-min-length", usage: "minimum password length for accounts without a second factor (8..64)", value: &value{set: num(&id.PasswordMinLength), show: showNum(&id.PasswordMinLength)}},
		{name: "argon2-memory", usage: "argon2id memory per password hash (e.g. 19MiB); existing hashes are upgraded at the next login", value: &value{set: func(s string) error {
			n, err := parseBytes(s)
			if err == nil && n/1024 > math.MaxUint32 {
				err = fmt.Errorf("%q is too large", s)
			}
			id.Argon2.MemoryKiB = uint32(min(n/1024, math.MaxUint32)) // #nosec G115 -- bounded just above
			return err
		}, show: func() string { return formatBytes(int64(id.Argon2.MemoryKiB) * 1024) }}},
		{name: "argon2-time", usage: "argon2id passes per password hash", value: &value{set: u32(&id.Argon2.Time), show: func() string { return strconv.FormatUint(uint64(id.Argon2.Time), 10) }}},
		{name: "lockout-failures", usage: "consecutive failed logins that lock an account", value: &value{set: num(&bf.Account.MaxFailures), show: showNum(&bf.Account.MaxFailures)}},
		{name: "lockout-duration", usage: "first temporary lockout; each further one doubles", value: &value{set: dur(&bf.Account.BaseLockout), show: showDur(&bf.Account.BaseLockout)}},
		{name: "lockout-max-duration", usage: "longest temporary lockout", value: &value{set: dur(&bf.Account.MaxLockout), show: showDur(&bf.Account.MaxLockout)}},
		{name: "lockout-reset-after", usage: "time without failures after which the failure counters reset", value: &value{set: dur(&bf.Account.ResetAfter), show: showDur(&bf.Account.ResetAfter)}},
		{name: "lockout-permanent-after", usage: "temporary lockouts after which the next is permanent until an admin unlocks (0: never)", value: &value{set: num(&bf.Account.PermanentAfter), show: showNum(&bf.Account.PermanentAfter)}},
		{name: "login-burst", usage: "login attempts one source address may make at once", value: &value{set: num(&bf.Source.Burst), show: showNum(&bf.Source.Burst)}},
		{name: "login-refill", usage: "time in which a source address earns back one login attempt", value: &value{set: dur(&bf.Source.Refill), show: showDur(&bf.Source.Refill)}},
		{name: "login-concurrency", usage: "password hashes computed at once (bounds CPU and memory under a login flood)", value: &value{set: num(&bf.Hash.Concurrency), show: showNum(&bf.Hash.Concurrency)}},
		{name: "login-hash-duty", usage: "largest share of time a hashing slot may spend hashing (0.05..1); caps login-flood CPU at login-concurrency × this", value: &value{set: func(s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number such as 0.25", s)
			}
			bf.Hash.Duty = f
			return nil
		}, show: func() string { return strconv.FormatFloat(bf.Hash.Duty, 'g', -1, 64) }}},
		{name: "login-hash-processes", usage: "compute login password hashes in lower-priority child processes, so a login flood does not slow other requests", value: &value{bool: true, set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			id.HashProcesses = b
			return nil
		}, show: func() string { return strconv.FormatBool(id.HashProcesses) }}},
		{name: "federation-file", usage: "YAML list of trusted external OIDC issuers (see docs/IDENTITY.md)", value: &value{set: func(s string) error {
			id.FederationFile = s
			issuers, err := readFederationFile(s)
			id.Federation = issuers
			return err
		}}},
		{name: "insecure-weak-password-hashing", usage: "allow argon2id settings below 19MiB/t=2 (INSECURE; for tests only)", value: &value{bool: true, set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			id.AllowWeakHashing = b
			return nil
		}}},
	}
}

// recorder is the flag.Value registered for an option: it records a bad
// value in problems and lets parsing go on.
type recorder struct {
	option
	problems *[]error
}

func (r recorder) Set(s string) error {
	if err := r.value.Set(s); err != nil {
		*r.problems = append(*r.problems, fmt.Errorf("--%s: %w", r.name, err))
	}
	return nil
}
func (r recorder) String() string   { return "" }
func (r recorder) IsBoolFlag() bool { return r.value.bool }

// value adapts a setter to flag.Value.
type value struct {
	set  func(string) error
	show func() string
	bool bool
}

func (v *value) Set(s string) error { return v.set(s) }
func (v *value) IsBoolFlag() bool   { return v.bool }
func (v *value) String() string {
	if v == nil || v.show == nil {
		return ""
	}
	return v.show()
}

// readFile parses the YAML config file into flag-name → string value. Lists
// become comma-separated, as on the command line.
func readFile(path string, opts []option) (map[string]string, error) {
	f, err := os.Open(path) // #nosec G304 -- operator-configured path (flag or data dir), never request input
	if err != nil {
		return nil, fmt.Errorf("config file: cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	m, err := parseYAML(data, opts)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return m, nil
}

func parseYAML(data []byte, opts []option) (map[string]string, error) {
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("larger than %s", formatBytes(maxConfigFileBytes))
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	known := map[string]bool{}
	for _, o := range opts {
		known[o.name] = o.name != "config"
	}
	var errs []error
	out := map[string]string{}
	for _, k := range sortedKeys(raw) {
		if !known[k] {
			errs = append(errs, fmt.Errorf("unknown setting %q", k))
			continue
		}
		s, err := scalar(raw[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		out[k] = s
	}
	return out, errors.Join(errs...)
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", errors.New("has no value")
	case map[string]any:
		return "", errors.New("must be a value or a list, not a mapping")
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := scalar(e)
			if err != nil || strings.Contains(s, ",") {
				return "", fmt.Errorf("list item %d must be a plain value", i+1)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	default:
		return fmt.Sprint(v), nil
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var byteUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseBytes reads "1048576", "512KiB", "1MiB" or "1GiB".
func parseBytes(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512KiB or 1MiB", s)
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// PrintUsage writes `rampart serve --help`.
func PrintUsage(w io.Writer) {
	c := Default()
	fmt.Fprint(w, `Usage: rampart serve --data-dir DIR [flags]

Start the Rampart server: TLS on by default (a private CA is created under
DIR/tls on first start; clients trust DIR/tls/ca.pem), state in DIR/rampart.db,
and on first start an "admin" account whose random password is written to
DIR/initial-admin-password (mode 0600). Set RAMPART_ADMIN_PASSWORD (at least
15 characters) to choose it instead.

Every setting can be given three ways. Precedence, highest first:
  1. a flag            --max-request-bytes 2MiB
  2. an environment    RAMPART_MAX_REQUEST_BYTES=2MiB
  3. the --config file max-request-bytes: 2MiB      (YAML, keys = flag names)
and otherwise the default shown below.

Flags:
`)
	for _, o := range options(&c) {
		arg := " VALUE"
		if o.value.bool {
			arg = ""
		}
		fmt.Fprintf(w, "  --%s%s\n      %s\n      env %s", o.name, arg, o.usage, EnvName(o.name))
		if d := o.value.String(); d != "" {
			fmt.Fprintf(w, ", default %s", d)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nSIGTERM or SIGINT stops the server gracefully: in-flight requests finish first.")
}

// federatedIssuer is one entry of the federation file.
type federatedIssuer struct {
	Name              string   `yaml:"name"`
	Issuer            string   `yaml:"issuer"`
	Audience          string   `yaml:"audience"`
	UsernameClaim     string   `yaml:"username_claim"`
	GroupsClaim       string   `yaml:"groups_claim"`
	Algorithms        []string `yaml:"algorithms"`
	CAFile            string   `yaml:"ca_file"`
	AllowInsecureHTTP bool     `yaml:"allow_insecure_http"`
}

// readFederationFile parses the federation file; unknown keys are errors,
// so a misspelt setting is not silently ignored.
func readFederationFile(path string) ([]federation.Issuer, error) {
	f, err := os.Open(path) // #nosec G304 -- operator-configured path, never request input
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, err
	}
	return parseFederation(data)
}

func parseFederation(data []byte) ([]federation.Issuer, error) {
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("larger than %s", formatBytes(maxConfigFileBytes))
	}
	var raw []federatedIssuer
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a YAML list of issuers: %w", err)
	}
	out := make([]federation.Issuer, len(raw))
	for i, r := range raw {
		out[i] = federation.Issuer{
			Name: r.Name, URL: r.Issuer, Audience: r.Audience, UsernameClaim: r.UsernameClaim,
			GroupsClaim: r.GroupsClaim, Algorithms: r.Algorithms, CAFile: r.CAFile, AllowInsecureHTTP: r.AllowInsecureHTTP,
		}
	}
	return out, nil
}

// ParseFederationFile reads a federation file as --federation-file does.
func ParseFederationFile(path string) ([]federation.Issuer, error) {
	return readFederationFile(path)
}
