// Command genblocklist turns a password list (one password a line, most
// common first) into the embedded blocklist of package password: every entry
// normalised the way the policy normalises a password (NFKC, then lower
// case), empty lines dropped, deduplicated, sorted, one entry a line, gzipped
// deterministically (no name, no modification time).
//
// It is run by scripts/gen-blocklist.sh, which fetches and verifies the
// source; it reads and writes local files only.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func main() {
	if err := realMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genblocklist:", err)
		os.Exit(1)
	}
}

func realMain(args []string) error {
	fs := flag.NewFlagSet("genblocklist", flag.ContinueOnError)
	in := fs.String("in", "", "source list, one password a line, most common first")
	out := fs.String("out", "", "gzipped blocklist to write")
	top := fs.Int("top", 0, "keep every entry of the first `N` lines")
	long := fs.Int("long", 0, "also keep entries of at least `N` characters from the rest of the list (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" || *top <= 0 || *long < 0 {
		return errors.New("usage: genblocklist -in FILE -out FILE.gz -top N [-long N]")
	}
	src, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	entries, err := build(src, *top, *long)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	gz, err := compress(entries)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, gz, 0o644); err != nil { // #nosec G306 G703 -- a committed source file, not a secret, at a path the developer gave
		return err
	}
	fmt.Fprintf(os.Stderr, "genblocklist: %d entries, %d bytes gzipped\n", len(entries), len(gz))
	return nil
}

// key must stay identical to password.blocklistKey; the package's tests
// check that every embedded entry is its own key.
func key(s string) string { return strings.ToLower(norm.NFKC.String(s)) }

func build(src []byte, top, long int) ([]string, error) {
	var entries []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("line %d: not UTF-8", n)
		}
		k := key(line)
		if k == "" || (n > top && (long == 0 || utf8.RuneCountInString(k) < long)) {
			continue
		}
		entries = append(entries, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.Sort(entries)
	return slices.Compact(entries), nil
}

func compress(entries []string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if _, err := zw.Write([]byte(e + "\n")); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
