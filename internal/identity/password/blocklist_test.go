package password

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The embedded file must be the one BLOCKLIST.md records, so that the
// record's provenance (source, version, tarball checksum) describes it.
func TestEmbeddedBlocklistMatchesRecord(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("BLOCKLIST.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("blocklist\\.txt\\.gz sha256: `([0-9a-f]{64})`").FindSubmatch(doc)
	if m == nil {
		t.Fatal("BLOCKLIST.md records no sha256 for blocklist.txt.gz")
	}
	sum := sha256.Sum256(blocklistGz)
	if got := hex.EncodeToString(sum[:]); got != string(m[1]) {
		t.Errorf("embedded blocklist.txt.gz has sha256 %s, BLOCKLIST.md records %s; run scripts/gen-blocklist.sh", got, m[1])
	}
	disk, err := os.ReadFile("blocklist.txt.gz")
	if err != nil || !bytes.Equal(disk, blocklistGz) {
		t.Errorf("blocklist.txt.gz on disk differs from the embedded copy (%v)", err)
	}
}

func TestEmbeddedBlocklistIsNormalised(t *testing.T) {
	t.Parallel()
	list, err := blocklist()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 100_000 {
		t.Errorf("blocklist has %d entries, want at least 100,000", len(list))
	}
	for i, e := range list {
		if e == "" || strings.ContainsAny(e, "\n\r") || blocklistKey(e) != e {
			t.Errorf("entry %d %q is not in normalised form %q", i, e, blocklistKey(e))
		}
		if i > 0 && list[i-1] >= e {
			t.Errorf("entries %d and %d out of order or duplicated: %q, %q", i-1, i, list[i-1], e)
		}
	}
}

func TestParseBlocklist(t *testing.T) {
	t.Parallel()
	if got, err := parseBlocklist(gz(t, "b\nc\na\n\n")); err != nil || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("parseBlocklist(unsorted) = %q, %v; want it sorted", got, err)
	}
	for name, data := range map[string][]byte{
		"empty list": gz(t, "\n\n"),
		"not gzip":   []byte("a\nb\n"),
		"truncated":  gz(t, strings.Repeat("entry\n", 1000))[:30],
		"nothing":    nil,
	} {
		if _, err := parseBlocklist(data); err == nil {
			t.Errorf("%s: parseBlocklist accepted it", name)
		}
	}
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkLoadBlocklist measures what the first Check pays: time per load,
// and heap-B, the heap the loaded list keeps alive.
func BenchmarkLoadBlocklist(b *testing.B) {
	b.Run("sortedSlice", func(b *testing.B) {
		benchmarkLoad(b, func() any {
			list, err := parseBlocklist(blocklistGz)
			if err != nil {
				b.Fatal(err)
			}
			return list
		})
	})
	b.Run("map", func(b *testing.B) {
		benchmarkLoad(b, func() any {
			list, err := parseBlocklist(blocklistGz)
			if err != nil {
				b.Fatal(err)
			}
			return asSet(list)
		})
	})
}

func benchmarkLoad(b *testing.B, load func() any) {
	for b.Loop() {
		runtime.KeepAlive(load())
	}
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := load()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-B")
}

// BenchmarkBlocklistLookup compares the binary search the package uses with
// a map, for one present and one absent key.
func BenchmarkBlocklistLookup(b *testing.B) {
	list, err := parseBlocklist(blocklistGz)
	if err != nil {
		b.Fatal(err)
	}
	m := asSet(list)
	keys := []string{"allyouneedislove", "mauve tractor silently"}
	b.Run("sortedSlice", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				_, _ = slices.BinarySearch(list, k)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				_ = m[k]
			}
		}
	})
}

// asSet is the map alternative the benchmarks compare against.
func asSet(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, e := range list {
		m[e] = struct{}{}
	}
	return m
}
