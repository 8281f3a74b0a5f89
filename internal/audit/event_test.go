package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// alice is a fixed pseudonym for tests.
var alice = Pseudonym([]byte("0123456789abcdef0123456789abcdef"), "id-alice")

// validEvent has every field set.
func validEvent() Event {
	return Event{
		Time:         time.Date(2025, 6, 7, 10, 11, 12, 13, time.FixedZone("CEST", 2*3600)),
		Actor:        alice,
		ActorKind:    ActorUser,
		Source:       "s-3f2a",
		Action:       "grant.create",
		TargetKind:   "grant",
		TargetDomain: "com.acme.vision",
		TargetID:     "g-42",
		Outcome:      OutcomeSuccess,
		Reason:       `a "quoted" \ reason, ünïcödé ✓`,
		RequestID:    "req-7",
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(e *Event)
		want   []string // substrings of the error; nil: valid
	}{
		{"valid", func(e *Event) {}, nil},
		{"minimal", func(e *Event) {
			*e = Event{Time: e.Time, Actor: "rampart", ActorKind: ActorSystem, Action: "server.start", Outcome: OutcomeSuccess}
		}, nil},
		{"anonymous", func(e *Event) { e.Actor, e.ActorKind, e.Outcome = "anonymous", ActorAnonymous, OutcomeFailure }, nil},
		{"service account", func(e *Event) { e.ActorKind = ActorServiceAccount }, nil},
		{"empty", func(e *Event) { *e = Event{} },
			[]string{"time: required", "actor: required", "actor kind: required", "action: required", "outcome: required"}},
		{"year out of range", func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"time: year 10000"}},
		{"user by name", func(e *Event) { e.Actor = "alice" }, []string{"actor: a user must appear as a pseudonym"}},
		{"user by id", func(e *Event) { e.Actor = "id-alice" }, []string{"pseudonym"}},
		{"pseudonym upper case", func(e *Event) { e.Actor = strings.ToUpper(alice) }, []string{"pseudonym"}},
		{"system actor with space", func(e *Event) { e.Actor, e.ActorKind = "the server", ActorSystem }, []string{"component name"}},
		{"anonymous with a name", func(e *Event) { e.Actor, e.ActorKind = "bob", ActorAnonymous }, []string{`must be "anonymous"`}},
		{"unknown actor kind", func(e *Event) { e.ActorKind = "robot" }, []string{"actor kind: must be"}},
		{"unknown outcome", func(e *Event) { e.Outcome = "ok" }, []string{"outcome: must be"}},
		{"IPv4 source", func(e *Event) { e.Source = "192.0.2.1" }, []string{"source: an IP address"}},
		{"IPv4 source with port", func(e *Event) { e.Source = "192.0.2.1:4433" }, []string{"source: an IP address"}},
		{"IPv6 source", func(e *Event) { e.Source = "2001:db8::1" }, []string{"source: an IP address"}},
		{"IPv6 source bracketed", func(e *Event) { e.Source = "[2001:db8::1]" }, []string{"source: an IP address"}},
		{"IPv6 source with port", func(e *Event) { e.Source = "[2001:db8::1]:443" }, []string{"source: an IP address"}},
		{"action with space", func(e *Event) { e.Action = "grant create" }, []string{"action: must be"}},
		{"action upper case", func(e *Event) { e.Action = "Grant.create" }, []string{"action: must be"}},
		{"target kind upper case", func(e *Event) { e.TargetKind = "Grant" }, []string{"target kind: must be"}},
		{"target id without kind", func(e *Event) { e.TargetKind = "" }, []string{"target kind: required with"}},
		{"newline in reason", func(e *Event) { e.Reason = "ok\n{\"outcome\":\"success\"}" }, []string{"reason: contains a control"}},
		{"carriage return in target id", func(e *Event) { e.TargetID = "g\r42" }, []string{"target id: contains a control"}},
		{"NUL in request id", func(e *Event) { e.RequestID = "a\x00b" }, []string{"request id: contains a control"}},
		{"escape in domain", func(e *Event) { e.TargetDomain = "com.\x1b[31macme" }, []string{"target domain: contains a control"}},
		{"DEL", func(e *Event) { e.Reason = "a\x7fb" }, []string{"reason: contains a control"}},
		{"C1 control", func(e *Event) { e.Reason = "a\u0085b" }, []string{"reason: contains a control"}},
		{"bidi override", func(e *Event) { e.Reason = "abc\u202edef" }, []string{"reason: contains a control"}},
		{"zero-width space", func(e *Event) { e.TargetID = "g\u200b42" }, []string{"target id: contains a control"}},
		{"line separator", func(e *Event) { e.Reason = "a\u2028b" }, []string{"reason: contains a control"}},
		{"invalid UTF-8", func(e *Event) { e.Reason = "a\xffb" }, []string{"reason: not valid UTF-8"}},
		{"long actor", func(e *Event) { e.Actor, e.ActorKind = strings.Repeat("a", maxActor+1), ActorSystem }, []string{"actor: longer than 128"}},
		{"long source", func(e *Event) { e.Source = strings.Repeat("s", maxSource+1) }, []string{"source: longer than 128"}},
		{"long action", func(e *Event) { e.Action = strings.Repeat("a", maxAction+1) }, []string{"action: longer than 128"}},
		{"long target kind", func(e *Event) { e.TargetKind = strings.Repeat("k", maxKind+1) }, []string{"target kind: longer than 64"}},
		{"long domain", func(e *Event) { e.TargetDomain = strings.Repeat("d", maxDomain+1) }, []string{"target domain: longer than 253"}},
		{"long target id", func(e *Event) { e.TargetID = strings.Repeat("i", maxTargetID+1) }, []string{"target id: longer than 256"}},
		{"long reason", func(e *Event) { e.Reason = strings.Repeat("r", maxReason+1) }, []string{"reason: longer than 1024"}},
		{"reason at the limit", func(e *Event) { e.Reason = strings.Repeat("r", maxReason) }, nil},
		{"long request id", func(e *Event) { e.RequestID = strings.Repeat("q", maxRequestID+1) }, []string{"request id: longer than 128"}},
		{"several problems at once", func(e *Event) { e.Outcome, e.Source, e.Reason = "", "10.0.0.1", "\n" },
			[]string{"outcome: required", "source: an IP address", "reason: contains a control"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := validEvent()
			tt.modify(&e)
			err := e.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestValidateNamesNoValues: error messages are logged, so they must not
// repeat what they refuse (it may be personal data or an injection).
func TestValidateNamesNoValues(t *testing.T) {
	t.Parallel()
	e := validEvent()
	e.Actor, e.Source, e.Reason = "alice@example.com", "198.51.100.7", "secret\nline"
	err := e.Validate()
	if err == nil {
		t.Fatal("Validate accepted a name, an address and a newline")
	}
	for _, v := range []string{"alice@example.com", "198.51.100.7", "secret"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error %q repeats %q", err, v)
		}
	}
}

// TestCanonicalGolden pins the canonical encoding and the record hash: a
// change to either breaks every existing log, so it must be deliberate.
func TestCanonicalGolden(t *testing.T) {
	t.Parallel()
	e := validEvent()
	got := Canonical(e)
	hash := hex.EncodeToString(RecordHash(GenesisHash(), 1, e)) + "\n"
	checkGolden(t, "canonical.golden.json", got)
	checkGolden(t, "record-hash.golden", []byte(hash))

	// It is JSON, and decodes to the event's fields.
	var m map[string]string
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("canonical encoding is not JSON: %v", err)
	}
	if m["reason"] != e.Reason || m["time"] != "2025-06-07T08:11:12.000000013Z" || len(m) != 11 {
		t.Errorf("decoded %v", m)
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil { // #nosec G306 -- test data
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path) // #nosec G304 -- test data
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\ngot  %s\nwant %s", name, got, want)
	}
}

// TestCanonicalDeterministic: the same instant in any zone, with or without
// a monotonic reading, encodes alike; any field change changes the bytes.
func TestCanonicalDeterministic(t *testing.T) {
	t.Parallel()
	e := validEvent()
	base := Canonical(e)
	same := e
	same.Time = e.Time.UTC()
	if !bytes.Equal(Canonical(same), base) {
		t.Error("same instant in UTC encodes differently")
	}
	now := time.Now()
	a, b := e, e
	a.Time, b.Time = now, now.Round(0).In(time.FixedZone("X", -7*3600))
	if !bytes.Equal(Canonical(a), Canonical(b)) {
		t.Error("monotonic reading or zone changes the encoding")
	}
	changes := []func(e *Event){
		func(e *Event) { e.Time = e.Time.Add(time.Nanosecond) },
		func(e *Event) { e.Actor = Pseudonym([]byte("k"), "x") },
		func(e *Event) { e.ActorKind = ActorServiceAccount },
		func(e *Event) { e.Source = "" },
		func(e *Event) { e.Action = "grant.delete" },
		func(e *Event) { e.TargetKind = "domain" },
		func(e *Event) { e.TargetDomain = "com.acme" },
		func(e *Event) { e.TargetID = "g-43" },
		func(e *Event) { e.Outcome = OutcomeDenied },
		func(e *Event) { e.Reason += " " },
		func(e *Event) { e.RequestID = "" },
		// Moving text between fields changes the bytes too.
		func(e *Event) { e.TargetDomain, e.TargetID = e.TargetDomain+e.TargetID, "" },
	}
	for i, change := range changes {
		c := e
		change(&c)
		if bytes.Equal(Canonical(c), base) {
			t.Errorf("change %d leaves the encoding as it was", i)
		}
	}
}

// FuzzCanonical: every valid event encodes to JSON that decodes to exactly
// its fields, and the encoding of any event, valid or not, is one-to-one
// on the field that differs.
func FuzzCanonical(f *testing.F) {
	e := validEvent()
	f.Add(e.Actor, e.Source, e.Action, e.TargetID, e.Reason, int64(0))
	f.Add("rampart", "", "a", "", "\"\\\n\x00\u2028\xff", int64(1))
	f.Add("anonymous", "192.0.2.1", "login", "x", "}", int64(-1))
	f.Fuzz(func(t *testing.T, actor, source, action, targetID, reason string, ns int64) {
		e := Event{
			Time:  time.Unix(0, ns),
			Actor: actor, ActorKind: ActorSystem, Source: source, Action: action,
			TargetKind: "model", TargetID: targetID, Outcome: OutcomeFailure, Reason: reason,
		}
		if actor == ActorAnonymous {
			e.ActorKind = ActorAnonymous
		}
		b := Canonical(e)
		other := e
		other.Reason += "x"
		if bytes.Equal(Canonical(other), b) {
			t.Fatal("two different events encode alike")
		}
		if e.Validate() != nil {
			return
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("valid event %+v encodes to invalid JSON %q: %v", e, b, err)
		}
		if m["actor"] != actor || m["source"] != source || m["action"] != action ||
			m["target_id"] != targetID || m["reason"] != reason || len(m) != 11 {
			t.Fatalf("decoded %v from %+v", m, e)
		}
	})
}
