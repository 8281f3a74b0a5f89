// Package doctor is Rampart's hardening self-check (`rampart doctor`): a set
// of checks, each turning facts about one installation (file modes, the
// configuration, certificates, store rows, the sandbox probe) into PASS,
// WARN or FAIL results with a one-line fix.
//
// The checks themselves are pure functions of what they are given, so each
// is tested on its own; Gather (gather.go) collects the facts from a data
// directory and a configuration. The package only reads: it never changes
// the data directory, takes its lock, or writes to the database (opened
// read-only, next to a running server).
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
)

// Status is a check's verdict.
type Status string

// Verdicts, from good to bad.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is one line of the report. The JSON form is the stable schema of
// `rampart doctor --output json`: a list of {id, status, message, fix}.
type Result struct {
	// ID names the check and, after a dot, what it looked at
	// ("perm.keys/master.key"); stable across runs, for automation.
	ID      string `json:"id"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to do; "" on PASS.
	Fix string `json:"fix"`
}

func pass(id, format string, args ...any) Result {
	return Result{ID: id, Status: Pass, Message: fmt.Sprintf(format, args...)}
}

func warn(id, fix, format string, args ...any) Result {
	return Result{ID: id, Status: Warn, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(id, fix, format string, args ...any) Result {
	return Result{ID: id, Status: Fail, Message: fmt.Sprintf(format, args...), Fix: fix}
}

// Failed reports whether any result is a FAIL.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns how many results have status s.
func Count(rs []Result, s Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == s {
			n++
		}
	}
	return n
}

// WriteText prints one line per result, the fix indented below it, and a
// summary line.
func WriteText(w io.Writer, rs []Result) error {
	for _, r := range rs {
		if _, err := fmt.Fprintf(w, "%-4s %s: %s\n", r.Status, r.ID, r.Message); err != nil {
			return err
		}
		if r.Fix != "" {
			if _, err := fmt.Fprintf(w, "     fix: %s\n", r.Fix); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d passed, %d warnings, %d failed\n", Count(rs, Pass), Count(rs, Warn), Count(rs, Fail))
	return err
}

// WriteJSON prints the results as one JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	if rs == nil {
		rs = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}
