package doctor

import (
	"fmt"
	"strings"

	"github.com/rampart-ml/rampart/internal/config"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/identity/password"
)

// Config checks the serve configuration (file, environment) for settings
// weaker than the secure defaults. source names where it came from, for
// the messages; loadErr is what config.Load reported, if anything.
func Config(c config.Config, source string, loadErr error) []Result {
	var rs []Result
	if loadErr != nil {
		// Every problem on one line: the server would refuse to start.
		msg := strings.ReplaceAll(loadErr.Error(), "\n", "; ")
		rs = append(rs, fail("config.valid", "fix the settings named; rampart serve refuses this configuration", "%s: %s", source, msg))
	}
	if c.TLS.InsecureHTTP {
		rs = append(rs, fail("config.insecure-http", "remove insecure-http (RAMPART_INSECURE_HTTP): serve TLS, or terminate TLS in front on the same host",
			"%s serves plain HTTP: passwords, tokens and tensors cross the network in clear", source))
	}
	if c.Identity.AllowWeakHashing || weakerArgon2(c.Identity.Argon2) {
		p := c.Identity.Argon2
		rs = append(rs, fail("config.hashing", "remove the argon2 and allow-weak-hashing settings to use the defaults",
			"%s hashes passwords with argon2id m=%d KiB t=%d p=%d (allow-weak-hashing %t), below the OWASP minimum m=%d t=%d",
			source, p.MemoryKiB, p.Time, p.Threads, c.Identity.AllowWeakHashing, password.DefaultParams.MemoryKiB, password.DefaultParams.Time))
	}
	if c.Audit.QueueFull == config.QueueDrop {
		rs = append(rs, warn("config.audit-queue-full", "set audit-queue-full: refuse (the default)",
			"%s drops audit records when the queue is full: denials and sampled inference calls can go unrecorded", source))
	}
	if c.Identity.PasswordMinLength < password.MinLength {
		rs = append(rs, warn("config.password-min-length", fmt.Sprintf("set password-min-length to %d or more", password.MinLength),
			"%s lets single-factor passwords be %d characters (default %d)", source, c.Identity.PasswordMinLength, password.MinLength))
	}
	if weak := weakerBruteForce(c.Identity.BruteForce); len(weak) > 0 {
		rs = append(rs, warn("config.brute-force", "remove these settings to use the defaults",
			"%s weakens brute-force protection: %s", source, strings.Join(weak, ", ")))
	}
	if !c.Identity.HashProcesses {
		rs = append(rs, warn("config.hash-processes", "remove hash-processes=false: login hashing then runs in low-priority child processes",
			"%s hashes login passwords inside the server process, so a login flood competes with serving", source))
	}
	if len(rs) == 0 {
		rs = append(rs, pass("config", "%s: no setting weaker than the defaults", source))
	}
	return rs
}

func weakerArgon2(p password.Params) bool {
	d := password.DefaultParams
	return p.MemoryKiB < d.MemoryKiB || p.Time < d.Time
}

// weakerBruteForce names every brute-force setting that is laxer than its
// default.
func weakerBruteForce(c bruteforce.Config) []string {
	d := bruteforce.DefaultConfig()
	var weak []string
	add := func(bad bool, format string, args ...any) {
		if bad {
			weak = append(weak, fmt.Sprintf(format, args...))
		}
	}
	a, da := c.Account, d.Account
	add(a.MaxFailures > da.MaxFailures, "lockout after %d failures (default %d)", a.MaxFailures, da.MaxFailures)
	add(a.BaseLockout < da.BaseLockout, "first lockout %s (default %s)", a.BaseLockout, da.BaseLockout)
	add(a.MaxLockout < da.MaxLockout, "longest lockout %s (default %s)", a.MaxLockout, da.MaxLockout)
	add(a.ResetAfter < da.ResetAfter, "counters reset after %s (default %s)", a.ResetAfter, da.ResetAfter)
	add(a.PermanentAfter == 0 || a.PermanentAfter > da.PermanentAfter, "permanent lock after %d lockouts (default %d; 0 never)", a.PermanentAfter, da.PermanentAfter)
	s, ds := c.Source, d.Source
	add(s.Burst > ds.Burst, "per-source burst %d (default %d)", s.Burst, ds.Burst)
	add(s.Refill < ds.Refill, "per-source refill %s (default %s)", s.Refill, ds.Refill)
	add(c.Timing.Min < d.Timing.Min, "login response floor %s (default %s)", c.Timing.Min, d.Timing.Min)
	return weak
}
