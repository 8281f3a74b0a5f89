package audit

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rampart-ml/rampart/internal/store"
)

// goldenSigner signs with a fixed key, so golden lines stay the same.
func goldenSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleLines returns a record and a checkpoint of it, and their lines.
func sampleLines(t testing.TB) (store.AuditRecord, store.AuditCheckpoint, []byte) {
	t.Helper()
	e := validEvent()
	e.Reason = `a "quoted" \ reason <b> & ünïcödé ✓`
	r := recordOf(1, GenesisHash(), RecordHash(GenesisHash(), 1, e), e)
	c := goldenSigner(t).sign(store.AuditCheckpoint{
		Seq: 1, Head: r.Hash, Kind: KindPeriodic, Time: time.Date(2025, 6, 7, 10, 12, 0, 5, time.UTC),
	})
	return r, c, append(MarshalRecordLine(r), MarshalCheckpointLine(c)...)
}

var equateLineTime = cmpopts.EquateApproxTime(0)

func TestLineGolden(t *testing.T) {
	t.Parallel()
	r, c, lines := sampleLines(t)
	checkGolden(t, "copy.golden.jsonl", lines)

	for i, line := range bytes.SplitAfter(lines, []byte("\n"))[:2] {
		if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Errorf("line %d is not one line: %q", i, line)
		}
		l, err := ParseLine(line)
		if err != nil {
			t.Fatalf("ParseLine(%s) = %v", line, err)
		}
		want := Line{Type: LineRecord, Record: r}
		if i == 1 {
			want = Line{Type: LineCheckpoint, Checkpoint: c}
		}
		if diff := cmp.Diff(want, l, equateLineTime); diff != "" {
			t.Errorf("ParseLine (-want +got):\n%s", diff)
		}
	}
}

func TestParseLineRefuses(t *testing.T) {
	t.Parallel()
	_, _, lines := sampleLines(t)
	parts := bytes.SplitAfter(lines, []byte("\n"))
	rec, cp := string(parts[0]), string(parts[1])
	tests := []struct{ name, line string }{
		{"empty", ""},
		{"not JSON", "record 1"},
		{"unknown type", `{"type":"comment"}`},
		{"no type", `{"seq":1}`},
		{"unknown field", strings.Replace(rec, `"seq":1,`, `"seq":1,"extra":1,`, 1)},
		{"two objects", strings.TrimSuffix(rec, "\n") + rec},
		{"seq 0", strings.Replace(rec, `"seq":1,`, `"seq":0,`, 1)},
		{"negative seq", strings.Replace(rec, `"seq":1,`, `"seq":-1,`, 1)},
		{"bad time", strings.Replace(rec, `"time":"2025`, `"time":"x2025`, 1)},
		{"short hash", strings.Replace(rec, `"hash":"`, `"hash":"00`, 1)},
		{"hash not hex", strings.Replace(rec, `"prev_hash":"00`, `"prev_hash":"zz`, 1)},
		{"unknown kind", strings.Replace(cp, `"periodic"`, `"weekly"`, 1)},
		{"bad signature", strings.Replace(cp, `"signature":"`, `"signature":"!`, 1)},
		{"short signature", strings.Replace(cp, `"signature":"`, `"signature":"AAAA`, 1)},
		{"too long", `{"type":"record","reason":"` + strings.Repeat("x", MaxLineSize) + `"}`},
	}
	for _, tt := range tests {
		if l, err := ParseLine([]byte(tt.line)); err == nil {
			t.Errorf("%s: ParseLine = %+v, want an error", tt.name, l)
		}
	}
}

// FuzzParseLine: ParseLine never panics, and what it accepts marshals to
// a line that parses to the same thing.
func FuzzParseLine(f *testing.F) {
	_, _, lines := sampleLines(f)
	for _, l := range bytes.SplitAfter(lines, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"type":"checkpoint","seq":0,"head":"","kind":"shutdown","time":"","signature":""}`))
	f.Add([]byte(`{"type":"record","seq":18446744073709551615}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLine(b)
		if err != nil {
			return
		}
		var again []byte
		switch l.Type {
		case LineRecord:
			again = MarshalRecordLine(l.Record)
		case LineCheckpoint:
			again = MarshalCheckpointLine(l.Checkpoint)
		default:
			t.Fatalf("ParseLine accepted type %q", l.Type)
		}
		l2, err := ParseLine(again)
		if err != nil {
			t.Fatalf("ParseLine(%s) = %v after a round trip of %q", again, err, b)
		}
		if diff := cmp.Diff(l, l2, equateLineTime); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
