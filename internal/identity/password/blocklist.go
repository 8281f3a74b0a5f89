package password

import (
	"bytes"
	"compress/gzip"
	_ "embed" // blocklist.txt.gz
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// blocklistGz holds the common and breached passwords the policy refuses:
// one entry a line, each already in blocklistKey form, sorted and unique.
// Where it comes from, and how to regenerate it, is in BLOCKLIST.md.
//
//go:embed blocklist.txt.gz
var blocklistGz []byte

// maxBlocklistBytes bounds the decompressed list, so a damaged file cannot
// make the first Check allocate without limit. The list is about 1 MB.
const maxBlocklistBytes = 64 << 20

// blocklist is the decompressed list, loaded on first use. It is a sorted
// slice of substrings of one string: 16 bytes an entry on top of the text,
// 2.9 MB of heap in all, loaded in about 9 ms, no hashing, no copying. A
// map[string]struct{} of the same entries holds 8.0 MB and takes about 20 ms
// to build (BenchmarkLoadBlocklist). The map's lookup is faster (about 10 ns
// against 60 ns), but Check looks up twice next to a zxcvbn run of about
// 500,000 ns, so the smaller structure wins.
var blocklist = sync.OnceValues(func() ([]string, error) { return parseBlocklist(blocklistGz) })

// LoadBlocklist loads the embedded blocklist now rather than on the first
// [Policy.Check], so a server can pay its cost (about 10 ms and 2.9 MB of
// heap) at start and fail early. Calling it again costs nothing.
func LoadBlocklist() error {
	_, err := blocklist()
	return err
}

func parseBlocklist(gz []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("password blocklist: %w", err)
	}
	var text strings.Builder
	if len(gz) >= 4 {
		// The gzip trailer ends with the uncompressed size (mod 2^32): one allocation.
		if n := binary.LittleEndian.Uint32(gz[len(gz)-4:]); n <= maxBlocklistBytes {
			text.Grow(int(n))
		}
	}
	n, err := io.Copy(&text, io.LimitReader(zr, maxBlocklistBytes+1))
	if err != nil {
		return nil, fmt.Errorf("password blocklist: %w", err)
	}
	if n > maxBlocklistBytes {
		return nil, fmt.Errorf("password blocklist: larger than %d bytes", maxBlocklistBytes)
	}
	s := text.String()
	entries := make([]string, 0, strings.Count(s, "\n")+1)
	for line := range strings.Lines(s) {
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			entries = append(entries, line)
		}
	}
	if len(entries) == 0 {
		return nil, errors.New("password blocklist: empty")
	}
	// The generator sorts; sorting here too keeps a hand-edited file from
	// silently defeating the binary search.
	if !slices.IsSorted(entries) {
		slices.Sort(entries)
	}
	return entries, nil
}

// blocklistKey is the form in which passwords are compared with the
// blocklist: NFKC, then lower case. internal/genblocklist applies the same.
func blocklistKey(s string) string { return strings.ToLower(norm.NFKC.String(s)) }

// blocklisted reports whether key, a blocklistKey, is in the list.
func blocklisted(key string) (bool, error) {
	list, err := blocklist()
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(list, key)
	return found, nil
}
