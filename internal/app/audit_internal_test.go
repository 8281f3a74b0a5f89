package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/store"
	"github.com/rampart-ml/rampart/internal/store/sqlite"
)

func TestParseRecordQuery(t *testing.T) {
	t.Parallel()
	since := time.Date(2025, 1, 31, 23, 59, 0, 500, time.UTC)
	for _, tc := range []struct {
		query string
		want  store.AuditQuery
	}{
		{"", store.AuditQuery{Limit: 1000}},
		{"after_seq=42&limit=10000", store.AuditQuery{AfterSeq: 42, Limit: 10000}},
		{"since=2025-01-31T23:59:00.0000005Z&limit=1", store.AuditQuery{Since: since, Limit: 1}},
		{"after_seq=18446744073709551615", store.AuditQuery{AfterSeq: 1<<64 - 1, Limit: 1000}},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseRecordQuery(v)
		if err != nil || got.AfterSeq != tc.want.AfterSeq || !got.Since.Equal(tc.want.Since) || got.Limit != tc.want.Limit {
			t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
}

// FuzzParseRecordQuery: any query is either refused with a 400 or gives
// a bounded query whose description the audit log takes.
func FuzzParseRecordQuery(f *testing.F) {
	for _, seed := range []string{"", "after_seq=1", "since=2025-01-02T03:04:05+01:00", "limit=10000", "limit=0",
		"after_seq=-1", "x=1", "limit=1&limit=2", "since=%0a", "since=0000-01-01T00:00:00Z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, err := parseRecordQuery(v)
		if err != nil {
			var he *httpapi.HTTPError
			if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
				t.Fatalf("%q: %v, want a 400", query, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxRecordLimit {
			t.Fatalf("%q: limit %d", query, q.Limit)
		}
		e := audit.Event{Time: time.Now(), Actor: audit.ActorAnonymous, ActorKind: audit.ActorAnonymous,
			Action: "audit.export", Outcome: audit.OutcomeSuccess, Reason: queryReason(q)}
		if err := e.Validate(); err != nil {
			t.Fatalf("%q: reason %q: %v", query, e.Reason, err)
		}
	})
}

func TestDescribeSubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rampart.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.InTx(ctx, func(tx store.Tx) error {
		now := time.Now()
		if err := tx.Accounts().CreateAccount(ctx, store.Account{ID: "u1", Name: "alice", PasswordHash: "x", CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.ServiceAccounts().CreateServiceAccount(ctx, store.ServiceAccount{ID: "sa-1", Name: "bot", OwnerID: "u1", CreatedAt: now}); err != nil {
			return err
		}
		for _, tc := range []struct{ id, kind, name string }{
			{"u1", "user", "alice"},
			{"sa-1", "service-account", "bot"},
			{"corp:alice@example.com", "federated", ""},
			{"u-gone", "user", ""},
			{"sa-gone", "service-account", ""},
		} {
			kind, name, err := describeSubject(ctx, tx, tc.id)
			if err != nil || kind != tc.kind || name != tc.name {
				t.Errorf("describeSubject(%s) = %q, %q, %v; want %q, %q", tc.id, kind, name, err, tc.kind, tc.name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
