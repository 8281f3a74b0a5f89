package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Queue-full policies of the asynchronous audit queue (Audit.QueueFull).
const (
	// QueueRefuse refuses the action whose record does not fit (default).
	QueueRefuse = "refuse"
	// QueueDrop lets the action happen and counts the dropped record.
	QueueDrop = "drop"
)

// Audit configures the audit log (see internal/audit and docs/PRIVACY.md).
type Audit struct {
	// CheckpointRecords and CheckpointInterval: the chain head is signed
	// after this many records or this long, whichever comes first.
	CheckpointRecords  int
	CheckpointInterval time.Duration
	// File, if set, receives a JSON-lines copy of every record and
	// checkpoint (for SIEMs, and to detect truncation of the database).
	File string
	// Stdout copies new records to standard output as JSON lines.
	Stdout bool
	// QueueSize bounds the asynchronous queue of records on hot paths
	// (denials, sampled inference); QueueFull says what happens when full.
	QueueSize int
	QueueFull string
	// InferenceSampleRate is the share of allowed inference calls recorded
	// (denials are always recorded; per-service counters stay exact).
	InferenceSampleRate float64
	// Retention, if non-zero, prunes records older than this behind a
	// signed prune checkpoint; zero keeps every record.
	Retention time.Duration
}

// DefaultAudit returns the audit defaults.
func DefaultAudit() Audit {
	return Audit{
		CheckpointRecords:   1000,
		CheckpointInterval:  time.Minute,
		QueueSize:           10_000,
		QueueFull:           QueueRefuse,
		InferenceSampleRate: 0.01,
	}
}

func (a Audit) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a.CheckpointRecords < 1 || a.CheckpointRecords > 1_000_000 {
		add("audit-checkpoint-records: %d must be between 1 and 1000000", a.CheckpointRecords)
	}
	if a.CheckpointInterval < time.Second || a.CheckpointInterval > 24*time.Hour {
		add("audit-checkpoint-interval: %v must be between 1s and 24h", a.CheckpointInterval)
	}
	if a.File != "" && !filepath.IsAbs(a.File) {
		add("audit-file: %q must be an absolute path", a.File)
	}
	if a.QueueSize < 100 || a.QueueSize > 1_000_000 {
		add("audit-queue-size: %d must be between 100 and 1000000", a.QueueSize)
	}
	if a.QueueFull != QueueRefuse && a.QueueFull != QueueDrop {
		add("audit-queue-full: %q must be %q or %q", a.QueueFull, QueueRefuse, QueueDrop)
	}
	if a.InferenceSampleRate < 0 || a.InferenceSampleRate > 1 {
		add("audit-inference-sample-rate: %v must be between 0 and 1", a.InferenceSampleRate)
	}
	if a.Retention != 0 && a.Retention < 24*time.Hour {
		add("audit-retention: %v must be 0 (keep everything) or at least 24h", a.Retention)
	}
	return errs
}

// auditOptions bind the Audit settings.
func auditOptions(c *Config, str func(*string) func(string) error, dur func(*time.Duration) func(string) error) []option {
	a := &c.Audit
	showDur := func(d *time.Duration) func() string { return func() string { return d.String() } }
	return []option{
		{name: "audit-checkpoint-records", usage: "sign the audit chain head after this many records", value: &value{set: func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			a.CheckpointRecords = n
			return nil
		}, show: func() string { return strconv.Itoa(a.CheckpointRecords) }}},
		{name: "audit-checkpoint-interval", usage: "sign the audit chain head at least this often while records arrive", value: &value{set: dur(&a.CheckpointInterval), show: showDur(&a.CheckpointInterval)}},
		{name: "audit-file", usage: "also append every audit record and checkpoint to this JSON-lines file (absolute path)", value: &value{set: str(&a.File)}},
		{name: "audit-stdout", usage: "also write new audit records to standard output as JSON lines", value: &value{bool: true, set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			a.Stdout = b
			return nil
		}}},
		{name: "audit-queue-size", usage: "records the asynchronous audit queue holds (denials, sampled inference)", value: &value{set: func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			a.QueueSize = n
			return nil
		}, show: func() string { return strconv.Itoa(a.QueueSize) }}},
		{name: "audit-queue-full", usage: "when the audit queue is full: refuse the action, or drop the record (INSECURE)", value: &value{set: str(&a.QueueFull), show: func() string { return a.QueueFull }}},
		{name: "audit-inference-sample-rate", usage: "share of allowed inference calls recorded in the audit log (0..1; denials are always recorded)", value: &value{set: func(s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", s)
			}
			a.InferenceSampleRate = f
			return nil
		}, show: func() string { return strconv.FormatFloat(a.InferenceSampleRate, 'g', -1, 64) }}},
		{name: "audit-retention", usage: "prune audit records older than this behind a signed checkpoint (0: keep all)", value: &value{set: dur(&a.Retention), show: showDur(&a.Retention)}},
	}
}
