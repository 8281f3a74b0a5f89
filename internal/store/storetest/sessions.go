package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/rampart-ml/rampart/internal/store"
)

func session(id, subject string) store.Session {
	return store.Session{
		ID:        id,
		Subject:   subject,
		ClientID:  "rampart-cli",
		Scopes:    []string{"openid", "models:read"},
		AMR:       []string{"pwd", "otp"},
		AuthTime:  epoch,
		CreatedAt: epoch.Add(time.Second),
		ExpiresAt: epoch.Add(24 * time.Hour),
	}
}

func createSessions(t *testing.T, s store.Store, sessions ...store.Session) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, sess := range sessions {
			if err := tx.Sessions().CreateSession(context.Background(), sess); err != nil {
				return err
			}
		}
		return nil
	})
}

func sessionByID(s store.Store, id string) (store.Session, error) {
	return get(s, func(tx store.Tx) (store.Session, error) {
		return tx.Sessions().SessionByID(context.Background(), id)
	})
}

func refreshToken(s store.Store, hash []byte) (store.RefreshToken, error) {
	return get(s, func(tx store.Tx) (store.RefreshToken, error) {
		return tx.Sessions().RefreshTokenByHash(context.Background(), hash)
	})
}

func useRefreshToken(s store.Store, hash []byte, at time.Time) error {
	return try(s, func(tx store.Tx) error { return tx.Sessions().UseRefreshToken(context.Background(), hash, at) })
}

// hash32 is a SHA-256-sized stand-in for a token hash.
func hash32(seed string) []byte {
	return []byte(strings.Repeat(seed, 32)[:32])
}

func testSessionRoundTrip(t *testing.T, s store.Store) {
	full := session("full", "id-alice")
	full.RevokedAt = epoch.Add(time.Hour)
	nilLists := session("nil-lists", "sa-ci")
	nilLists.ClientID, nilLists.Scopes, nilLists.AMR = "", nil, nil
	// Empty lists read back as nil.
	emptyLists := session("empty-lists", "id-alice")
	emptyLists.Scopes, emptyLists.AMR = []string{}, []string{}
	emptyRead := emptyLists
	emptyRead.Scopes, emptyRead.AMR = nil, nil
	oneScope := session("one-scope", "id-alice")
	oneScope.Scopes, oneScope.AMR = []string{"openid"}, []string{"pwd"}
	for _, tt := range []struct {
		name     string
		in, want store.Session
	}{
		{"all fields", full, full},
		{"nil scopes and amr", nilLists, nilLists},
		{"empty scopes and amr", emptyLists, emptyRead},
		{"one scope", oneScope, oneScope},
	} {
		createSessions(t, s, tt.in)
		got, err := sessionByID(s, tt.in.ID)
		if err != nil {
			t.Fatalf("%s: SessionByID: %v", tt.name, err)
		}
		// cmp tells nil from empty, so this checks the nil rule too.
		if d := cmp.Diff(tt.want, got, equateTime); d != "" {
			t.Errorf("%s: SessionByID (-want +got):\n%s", tt.name, d)
		}
	}
}

func testSessionErrors(t *testing.T, s store.Store) {
	ctx := context.Background()
	sess := session("s1", "id-alice")
	createSessions(t, s, sess)
	for _, tt := range []struct {
		name string
		fn   func(r store.Sessions) error
		want error
	}{
		{"CreateSession(id taken)", func(r store.Sessions) error { return r.CreateSession(ctx, session(sess.ID, "id-bob")) }, store.ErrConflict},
		{"SessionByID(unknown)", func(r store.Sessions) error { _, err := r.SessionByID(ctx, "nope"); return err }, store.ErrNotFound},
		{"RevokeSession(unknown)", func(r store.Sessions) error { return r.RevokeSession(ctx, "nope", epoch) }, store.ErrNotFound},
		{"CreateRefreshToken(unknown session)", func(r store.Sessions) error {
			return r.CreateRefreshToken(ctx, store.RefreshToken{Hash: hash32("a"), SessionID: "nope", CreatedAt: epoch, ExpiresAt: epoch})
		}, store.ErrNotFound},
		{"RefreshTokenByHash(unknown)", func(r store.Sessions) error { _, err := r.RefreshTokenByHash(ctx, hash32("z")); return err }, store.ErrNotFound},
		{"UseRefreshToken(unknown)", func(r store.Sessions) error { return r.UseRefreshToken(ctx, hash32("z"), epoch) }, store.ErrNotFound},
	} {
		err := try(s, func(tx store.Tx) error { return tt.fn(tx.Sessions()) })
		wantIs(t, tt.name, err, tt.want)
	}
	if got, err := sessionByID(s, sess.ID); err != nil || got.Subject != sess.Subject {
		t.Errorf("after failed calls: SessionByID = %+v, %v; want it unchanged", got, err)
	}
}

func testRevokeSession(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := session("s1", "id-alice")
	createSessions(t, s, want, session("s2", "id-alice"))
	want.RevokedAt = epoch.Add(time.Hour)
	// Revoking again is a no-op: the first time stays.
	for _, at := range []time.Time{want.RevokedAt, want.RevokedAt.Add(time.Hour)} {
		inTx(t, s, func(tx store.Tx) error { return tx.Sessions().RevokeSession(ctx, want.ID, at) })
		got, err := sessionByID(s, want.ID)
		if err != nil {
			t.Fatalf("SessionByID: %v", err)
		}
		if d := cmp.Diff(want, got, equateTime); d != "" {
			t.Errorf("after RevokeSession at %v (-want +got):\n%s", at, d)
		}
	}
	if got, err := sessionByID(s, "s2"); err != nil || !got.RevokedAt.IsZero() {
		t.Errorf("RevokeSession revoked another session: %+v, %v", got, err)
	}
}

func testRevokeSessionsOf(t *testing.T, s store.Store) {
	ctx := context.Background()
	earlier, at := epoch.Add(time.Minute), epoch.Add(time.Hour)
	revoked := session("a2", "id-alice")
	revoked.RevokedAt = earlier
	// Created neither in id order nor in its reverse.
	createSessions(t, s, session("a3", "id-alice"), session("a1", "id-alice"), revoked,
		session("a4", "id-alice"), session("b1", "id-bob"))

	for _, tt := range []struct {
		subject string
		want    []string
	}{
		{"id-alice", []string{"a1", "a3", "a4"}}, // sorted, and not a2, already revoked
		{"id-alice", nil},                        // nothing left to revoke
		{"no-such-subject", nil},
	} {
		got := must(t, s, func(tx store.Tx) ([]string, error) { return tx.Sessions().RevokeSessionsOf(ctx, tt.subject, at) })
		if d := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("RevokeSessionsOf(%q) (-want +got):\n%s", tt.subject, d)
		}
	}
	for id, want := range map[string]time.Time{"a1": at, "a2": earlier, "a3": at, "a4": at, "b1": {}} {
		got, err := sessionByID(s, id)
		if err != nil {
			t.Fatalf("SessionByID(%q): %v", id, err)
		}
		if d := cmp.Diff(want, got.RevokedAt, equateTime); d != "" {
			t.Errorf("session %s RevokedAt (-want +got):\n%s", id, d)
		}
	}
}

func testRefreshTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	createSessions(t, s, session("s1", "id-alice"))
	fresh := store.RefreshToken{Hash: hash32("a"), SessionID: "s1", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	used := store.RefreshToken{Hash: hash32("b"), SessionID: "s1", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour),
		UsedAt: epoch.Add(time.Minute)}
	inTx(t, s, func(tx store.Tx) error {
		for _, rt := range []store.RefreshToken{fresh, used} {
			if err := tx.Sessions().CreateRefreshToken(ctx, rt); err != nil {
				return err
			}
		}
		return nil
	})
	for _, want := range []store.RefreshToken{fresh, used} {
		got, err := refreshToken(s, want.Hash)
		if err != nil {
			t.Fatalf("RefreshTokenByHash: %v", err)
		}
		if d := cmp.Diff(want, got, equateTime); d != "" {
			t.Errorf("RefreshTokenByHash (-want +got):\n%s", d)
		}
	}
	dup := fresh
	dup.CreatedAt = epoch.Add(time.Minute)
	err := try(s, func(tx store.Tx) error { return tx.Sessions().CreateRefreshToken(ctx, dup) })
	wantIs(t, "CreateRefreshToken(hash taken)", err, store.ErrConflict)
}

func testUseRefreshToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	createSessions(t, s, session("s1", "id-alice"))
	want := store.RefreshToken{Hash: hash32("a"), SessionID: "s1", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	inTx(t, s, func(tx store.Tx) error { return tx.Sessions().CreateRefreshToken(ctx, want) })

	first, replay := epoch.Add(time.Minute), epoch.Add(2*time.Minute)
	if err := useRefreshToken(s, want.Hash, first); err != nil {
		t.Fatalf("UseRefreshToken: %v", err)
	}
	wantIs(t, "UseRefreshToken(replay)", useRefreshToken(s, want.Hash, replay), store.ErrConflict)
	want.UsedAt = first // the replay changed nothing
	got, err := refreshToken(s, want.Hash)
	if err != nil {
		t.Fatalf("RefreshTokenByHash: %v", err)
	}
	if d := cmp.Diff(want, got, equateTime); d != "" {
		t.Errorf("after use and replay (-want +got):\n%s", d)
	}
}

func testUseRefreshTokenRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	createSessions(t, s, session("s1", "id-alice"))
	rt := store.RefreshToken{Hash: hash32("a"), SessionID: "s1", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	inTx(t, s, func(tx store.Tx) error { return tx.Sessions().CreateRefreshToken(ctx, rt) })

	// The exchange fails after the token was marked used (say, issuing the
	// new one failed): the token must still be usable.
	errBoom := errors.New("boom")
	err := try(s, func(tx store.Tx) error {
		if err := tx.Sessions().UseRefreshToken(ctx, rt.Hash, epoch); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx error = %v, want the error fn returned", err)
	}
	if got, err := refreshToken(s, rt.Hash); err != nil || !got.UsedAt.IsZero() {
		t.Errorf("after rollback: RefreshTokenByHash = %+v, %v; want it unused", got, err)
	}
	if err := useRefreshToken(s, rt.Hash, epoch); err != nil {
		t.Errorf("UseRefreshToken after rollback: %v", err)
	}
}

func revocations(t *testing.T, s store.Store, now time.Time) (tokens, sessions []store.RevokedToken) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) (err error) {
		tokens, sessions, err = tx.Sessions().Revocations(context.Background(), now)
		return err
	})
	return tokens, sessions
}

// sortRevoked ignores order, which Revocations does not promise.
var sortRevoked = cmpopts.SortSlices(func(a, b store.RevokedToken) bool { return a.ID < b.ID })

func testRevocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := epoch.Add(time.Hour)
	tokens := []store.RevokedToken{
		{ID: "jti-live", ExpiresAt: now.Add(time.Minute)},
		{ID: "jti-expired", ExpiresAt: now.Add(-time.Minute)},
		{ID: "jti-at-now", ExpiresAt: now}, // not after now
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, rt := range append(tokens, tokens[0]) { // twice is not an error
			if err := tx.Sessions().RevokeAccessToken(ctx, rt); err != nil {
				return err
			}
		}
		return nil
	})
	err := try(s, func(tx store.Tx) error { return tx.Sessions().RevokeAccessToken(ctx, tokens[0]) })
	if err != nil {
		t.Errorf("RevokeAccessToken again in a later transaction: %v", err)
	}

	sess := func(id string, expires time.Time, revoked bool) store.Session {
		s := session(id, "id-alice")
		s.ExpiresAt = expires
		if revoked {
			s.RevokedAt = epoch
		}
		return s
	}
	createSessions(t, s,
		sess("revoked-live", now.Add(time.Minute), true),
		sess("revoked-expired", now.Add(-time.Minute), true),
		sess("revoked-at-now", now, true),
		sess("active", now.Add(time.Minute), false),
	)

	gotTokens, gotSessions := revocations(t, s, now)
	if d := cmp.Diff([]store.RevokedToken{tokens[0]}, gotTokens, equateTime, sortRevoked); d != "" {
		t.Errorf("revoked tokens (-want +got):\n%s", d)
	}
	wantSessions := []store.RevokedToken{{ID: "revoked-live", ExpiresAt: now.Add(time.Minute)}}
	if d := cmp.Diff(wantSessions, gotSessions, equateTime, sortRevoked); d != "" {
		t.Errorf("revoked sessions (-want +got):\n%s", d)
	}

	gotTokens, gotSessions = revocations(t, s, epoch)
	if d := cmp.Diff(tokens, gotTokens, equateTime, sortRevoked); d != "" {
		t.Errorf("revoked tokens at an earlier time (-want +got):\n%s", d)
	}
	if len(gotSessions) != 3 {
		t.Errorf("revoked sessions at an earlier time = %v, want the 3 revoked ones", gotSessions)
	}
}

func testDeleteExpiredSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := epoch.Add(time.Hour)
	expired, atNow, live := session("expired", "id-alice"), session("at-now", "id-alice"), session("live", "id-alice")
	expired.ExpiresAt, atNow.ExpiresAt, live.ExpiresAt = now.Add(-time.Minute), now, now.Add(time.Minute)
	expired.RevokedAt = epoch
	createSessions(t, s, expired, atNow, live)
	tokenOf := func(sess store.Session) store.RefreshToken {
		return store.RefreshToken{Hash: hash32(sess.ID), SessionID: sess.ID, CreatedAt: epoch, ExpiresAt: sess.ExpiresAt}
	}
	revoked := []store.RevokedToken{
		{ID: "jti-expired", ExpiresAt: now.Add(-time.Minute)},
		{ID: "jti-at-now", ExpiresAt: now},
		{ID: "jti-live", ExpiresAt: now.Add(time.Minute)},
	}
	inTx(t, s, func(tx store.Tx) error {
		for _, sess := range []store.Session{expired, atNow, live} {
			if err := tx.Sessions().CreateRefreshToken(ctx, tokenOf(sess)); err != nil {
				return err
			}
		}
		for _, rt := range revoked {
			if err := tx.Sessions().RevokeAccessToken(ctx, rt); err != nil {
				return err
			}
		}
		return nil
	})

	inTx(t, s, func(tx store.Tx) error { return tx.Sessions().DeleteExpiredSessions(ctx, now) })

	for _, tt := range []struct {
		sess store.Session
		gone bool
	}{{expired, true}, {atNow, false}, {live, false}} {
		_, errSess := sessionByID(s, tt.sess.ID)
		_, errToken := refreshToken(s, tokenOf(tt.sess).Hash)
		if tt.gone {
			wantIs(t, "SessionByID("+tt.sess.ID+")", errSess, store.ErrNotFound)
			wantIs(t, "RefreshTokenByHash(token of "+tt.sess.ID+")", errToken, store.ErrNotFound)
			continue
		}
		if errSess != nil || errToken != nil {
			t.Errorf("session %s: SessionByID: %v, RefreshTokenByHash: %v; want both kept", tt.sess.ID, errSess, errToken)
		}
	}
	gotTokens, _ := revocations(t, s, epoch) // everything still stored
	if d := cmp.Diff(revoked[1:], gotTokens, equateTime, sortRevoked); d != "" {
		t.Errorf("revoked tokens after DeleteExpiredSessions (-want +got):\n%s", d)
	}
}
