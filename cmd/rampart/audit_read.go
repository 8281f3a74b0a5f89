package main

// rampart audit export, tail and resolve: an auditor reads the audit log
// and resolves pseudonyms through the server's API as the logged-in
// account. The server records every read; these commands only page,
// follow and print.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/app"
)

const (
	auditExportSynopsis = "rampart audit export [--since TIME|DURATION] [--after-seq N] [--format jsonl] [--credentials FILE]\n\n" +
		"Writes the audit records, oldest first, to stdout as JSON lines, one record a\n" +
		"line, paging through the server until the end. Needs the auditor role; the\n" +
		"server records each read."
	auditTailSynopsis = "rampart audit tail [--after-seq N] [--interval 1s] [--credentials FILE]\n\n" +
		"Follows the audit log: prints each new record as a JSON line until interrupted\n" +
		"(Ctrl-C exits 0). Starts at the current end unless --after-seq is given. Each\n" +
		"poll is a recorded read; tail does not print the records of its own reads."
	auditResolveSynopsis = "rampart audit resolve PSEUDONYM [--json] [--credentials FILE]\n\n" +
		"Says which user or service account a pseudonym (p-…) from the audit log stands\n" +
		"for, while the subject exists and was not erased. Needs the auditor role; the\n" +
		"server records the lookup."
)

// Paging of the records API.
const (
	recordsPath = "/api/v1/audit/records"
	// recordsPageSize is the most the server gives in one answer.
	recordsPageSize = 10_000
	// maxRecordLine bounds one JSON line from the server.
	maxRecordLine = 1 << 20
)

func auditExport(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart audit export", auditExportSynopsis, stdout)
	f.register(fs)
	since := fs.String("since", "", "only records from this time on: RFC 3339 (2025-01-31T00:00:00Z) or a duration back from now (24h)")
	afterSeq := fs.Uint64("after-seq", 0, "only records after this seq (the last one already exported)")
	format := fs.String("format", "jsonl", "output format; jsonl (JSON lines) is the only one")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if *format != "jsonl" {
		return usageError("--format %q: the only format is jsonl", *format)
	}
	q := url.Values{"limit": {strconv.Itoa(recordsPageSize)}}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		q.Set("since", t.UTC().Format(time.RFC3339Nano))
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(stdout)
	after := *afterSeq
	for {
		q.Set("after_seq", strconv.FormatUint(after, 10))
		page, err := s.readRecords(ctx, q, out, false)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		if page.lines > 0 {
			after = page.last
		}
		if page.lines < recordsPageSize {
			return nil
		}
	}
}

// parseSince reads --since: an RFC 3339 time, or a positive duration back
// from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, usageError("--since %q: give an RFC 3339 time such as 2025-01-31T00:00:00Z or a duration such as 24h", s)
	}
	return now.Add(-d), nil
}

func auditTail(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart audit tail", auditTailSynopsis, stdout)
	f.register(fs)
	afterSeq := fs.Uint64("after-seq", 0, "start after this seq instead of at the current end (0: from the first record)")
	interval := fs.Duration("interval", time.Second, "how often to ask for new records")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return usageError("--interval %s: give 100ms or more", *interval)
	}
	fromStart := false
	fs.Visit(func(fl *flag.Flag) { fromStart = fromStart || fl.Name == "after-seq" })
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	after := *afterSeq
	if !fromStart {
		// A read after the largest seq returns nothing but the head.
		page, err := s.readRecords(ctx, url.Values{"after_seq": {strconv.FormatUint(math.MaxUint64, 10)}, "limit": {"1"}}, io.Discard, true)
		if err != nil {
			return interrupted(ctx, err)
		}
		after = page.head
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		// Catch up completely, then wait.
		for {
			q := url.Values{"after_seq": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(recordsPageSize)}}
			page, err := s.readRecords(ctx, q, stdout, true)
			if err != nil {
				return interrupted(ctx, err)
			}
			if page.lines > 0 {
				after = page.last
			}
			if page.lines < recordsPageSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// interrupted is nil when ctx was cancelled (Ctrl-C ends tail as asked),
// else err.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// recordPage is what one answer of the records API held.
type recordPage struct {
	lines int    // records received, skipped ones included
	last  uint64 // seq of the last one
	head  uint64 // the server's newest seq when it answered
}

// readRecords gets one page of records with query q and copies its lines
// to out as they are. With skipOwn it leaves out the records of this
// session's own reads (by the request ids of their answers'
// X-Request-Id), so a follower does not print its own polling: a read is
// recorded before it is answered, so its record comes in a later page.
func (s *session) readRecords(ctx context.Context, q url.Values, out io.Writer, skipOwn bool) (recordPage, error) {
	var page recordPage
	err := s.getStream(ctx, recordsPath+"?"+q.Encode(), func(res *http.Response) error {
		page = recordPage{}
		if h := res.Header.Get(app.AuditHeadHeader); h != "" {
			n, err := strconv.ParseUint(h, 10, 64)
			if err != nil {
				return fmt.Errorf("the server's %s header %q is not a number", app.AuditHeadHeader, h)
			}
			page.head = n
		}
		own := res.Header.Get("X-Request-Id")
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), maxRecordLine)
		for sc.Scan() {
			line := sc.Bytes()
			var rec struct {
				Seq       uint64 `json:"seq"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				return fmt.Errorf("GET %s: line %d is not a JSON record: %v", recordsPath, page.lines+1, err)
			}
			// Seqs only grow: anything else would make paging loop.
			if rec.Seq <= page.last {
				return fmt.Errorf("GET %s: record %d came after record %d", recordsPath, rec.Seq, page.last)
			}
			page.lines++
			page.last = rec.Seq
			if skipOwn && rec.RequestID != "" && (rec.RequestID == own || s.ownReads[rec.RequestID]) {
				continue
			}
			if _, err := out.Write(append(bytes.TrimSpace(line), '\n')); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("GET %s: %w", recordsPath, err)
		}
		if skipOwn && own != "" {
			if s.ownReads == nil || len(s.ownReads) >= maxOwnReads {
				s.ownReads = make(map[string]bool) // long past: their records were printed or skipped
			}
			s.ownReads[own] = true
		}
		return nil
	})
	return page, err
}

// maxOwnReads bounds the request ids a follower remembers.
const maxOwnReads = 10_000

// getStream sends GET path with the stored login's access token and
// hands a 2xx response to read, without the size limit of do: exports
// are as large as the log.
func (s *session) getStream(ctx context.Context, path string, read func(res *http.Response) error) error {
	return s.authorized(ctx, func(token string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.server+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := s.http.Do(req)
		if err != nil {
			return transportError(s.server, err)
		}
		defer res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode > 299 {
			return readAPIError(res)
		}
		if err := read(res); err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return errors.New("interrupted")
			}
			return err
		}
		return nil
	})
}

// resolvedPseudonym is the answer of GET /api/v1/audit/pseudonyms/{p}.
type resolvedPseudonym struct {
	Pseudonym string `json:"pseudonym"`
	SubjectID string `json:"subject_id"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

func auditResolve(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart audit resolve", auditResolveSynopsis, stdout)
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	p, done, err := parseFlagsAndArg(fs, args, "the PSEUDONYM (p-… from an audit record)")
	if done || err != nil {
		return err
	}
	if !strings.HasPrefix(p, "p-") {
		return usageError("%q is not a pseudonym: pseudonyms start with p- (the actor or target_id of a record)", p)
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodGet, "/api/v1/audit/pseudonyms/"+url.PathEscape(p), nil, &raw); err != nil {
		return fmt.Errorf("resolve %s: %w", p, err)
	}
	if *asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	var r resolvedPseudonym
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("resolve %s: the server's answer is not the JSON expected: %v", p, err)
	}
	name := r.Name
	if name == "" {
		name = "-"
	}
	fmt.Fprintf(stdout, "pseudonym:  %s\nsubject id: %s\nkind:       %s\nname:       %s\n", r.Pseudonym, r.SubjectID, r.Kind, name)
	return nil
}
