package registry

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var checkTextCases = []struct {
	name      string
	in        string
	max       int
	multiLine bool
	ok        bool
}{
	{"plain", "ResNet-50 (ImageNet)", 200, false, true},
	{"accents count as one", strings.Repeat("é", 10), 10, false, true},
	{"too long", strings.Repeat("é", 11), 10, false, false},
	{"empty", "", 10, false, true},
	{"newline in a title", "a\nb", 10, false, false},
	{"newline in a description", "a\nb\tc", 10, true, true},
	{"carriage return", "a\rb", 10, true, false},
	{"escape", "a\x1b[31mb", 20, true, false},
	{"NUL", "a\x00b", 10, true, false},
	{"DEL", "a\x7fb", 10, true, false},
	{"C1 control", "a\u0085b", 10, true, false},
	{"bidi override", "abc\u202edef", 20, true, false},
	{"bidi isolate", "abc\u2066def", 20, true, false},
	{"invalid UTF-8", "a\xffb", 10, true, false},
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	for _, tc := range checkTextCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if p := checkText(tc.in, tc.max, tc.multiLine); (p == "") != tc.ok {
				t.Errorf("checkText(%q) = %q, want ok=%t", tc.in, p, tc.ok)
			}
		})
	}
}

// FuzzCheckText: whatever a client sends, what is accepted is valid
// UTF-8, within bounds and free of control characters.
func FuzzCheckText(f *testing.F) {
	for _, tc := range checkTextCases {
		f.Add(tc.in, tc.multiLine)
	}
	f.Fuzz(func(t *testing.T, s string, multiLine bool) {
		if checkText(s, 64, multiLine) != "" {
			return
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 64 {
			t.Fatalf("accepted %q", s)
		}
		for _, c := range s {
			if (unicode.IsControl(c) && !(multiLine && (c == '\n' || c == '\t'))) || isBidiControl(c) {
				t.Fatalf("accepted %q with U+%04X", s, c)
			}
		}
	})
}
