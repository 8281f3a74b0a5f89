package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity/identitytest"
	"github.com/rampart-ml/rampart/internal/identity/provider"
	"github.com/rampart-ml/rampart/internal/store"
)

// recordsSince returns the records appended after the first n.
func (e *env) recordsSince(t *testing.T, n int) []store.AuditRecord {
	t.Helper()
	return identitytest.Records(t, e.Store)[n:]
}

func (e *env) recordCount(t *testing.T) int {
	t.Helper()
	return len(identitytest.Records(t, e.Store))
}

// wantIssued checks that recs hold exactly one "token.issue" and that it
// names the access token by its jti, grant as the reason and subject (as
// a pseudonym) as the actor.
func (e *env) wantIssued(t *testing.T, recs []store.AuditRecord, accessToken, grant, subject string) {
	t.Helper()
	issued := identitytest.WithAction(recs, "token.issue")
	if len(issued) != 1 {
		t.Fatalf("%s: %d token.issue records in %q, want 1", grant, len(issued), identitytest.Actions(recs))
	}
	r := issued[0]
	jti, _ := claimsOf(t, accessToken)["jti"].(string)
	if r.Outcome != audit.OutcomeSuccess || r.Reason != grant || r.TargetKind != "token" || r.TargetID != jti || jti == "" {
		t.Errorf("%s: token.issue record %+v, want target token:%s", grant, r, jti)
	}
	if got, err := identitytest.Resolve(t, e.Store, e.Rec, r.Actor); err != nil || got != subject {
		t.Errorf("%s: actor resolves to %q, %v; want %s", grant, got, err, subject)
	}
	if r.Source == "" || r.RequestID == "" {
		t.Errorf("%s: record without source pseudonym or request id: %+v", grant, r)
	}
}

// Every grant records the token it issues (and the session it starts)
// before the token leaves the server; no record holds a name, e-mail,
// password, token, secret or address.
func TestTokensAreRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	saID, secret := e.createServiceAccount(t, "robot")
	key := e.addClientKey(t, saID, "k1")
	var private []string // what no record may contain

	n := e.recordCount(t)
	cc := mustTokens(t, e.clientCredentials(t, saID, secret))
	recs := e.recordsSince(t, n)
	e.wantIssued(t, recs, cc.AccessToken, "client_credentials", saID)
	if got := identitytest.Actions(recs); got != "token.issue" {
		t.Errorf("client_credentials: records %q, want only token.issue", got)
	}
	private = append(private, cc.AccessToken, secret)

	n = e.recordCount(t)
	now := time.Now()
	assertion := signWith(t, jose.ES256, key, "k1", map[string]any{
		"iss": saID, "sub": saID, "aud": []string{e.URL}, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "a1",
	})
	jb := mustTokens(t, e.jwtBearer(t, assertion))
	e.wantIssued(t, e.recordsSince(t, n), jb.AccessToken, "jwt-bearer", saID)
	private = append(private, jb.AccessToken, assertion)

	n = e.recordCount(t)
	api := e.apiLogin(t, "alice", userPassword)
	recs = e.recordsSince(t, n)
	e.wantIssued(t, recs, api.AccessToken, "password", alice.ID)
	if got := identitytest.Actions(recs); got != "login session.create token.issue" {
		t.Errorf("api login: records %q", got)
	}
	private = append(private, api.AccessToken, api.RefreshToken, api.IDToken)

	n = e.recordCount(t)
	code := e.codeFlow(t, "alice", userPassword)
	e.wantIssued(t, e.recordsSince(t, n), code.AccessToken, "authorization_code", alice.ID)
	private = append(private, code.AccessToken, code.RefreshToken, code.IDToken)

	n = e.recordCount(t)
	refreshed := mustTokens(t, e.refresh(t, code.RefreshToken))
	e.wantIssued(t, e.recordsSince(t, n), refreshed.AccessToken, "refresh_token", alice.ID)
	private = append(private, refreshed.AccessToken, refreshed.RefreshToken)

	n = e.recordCount(t)
	d := e.startDevice(t)
	if r := e.decideDevice(t, d.UserCode, "alice", userPassword, "approve"); r.Status != http.StatusOK {
		t.Fatalf("approve device: %d", r.Status)
	}
	dev := mustTokens(t, e.pollDevice(t, d.DeviceCode))
	e.wantIssued(t, e.recordsSince(t, n), dev.AccessToken, "device_code", alice.ID)
	private = append(private, dev.AccessToken, dev.RefreshToken, d.DeviceCode, d.UserCode)

	for _, r := range identitytest.WithAction(identitytest.Records(t, e.Store), "session.create") {
		if r.TargetKind != "session" || r.TargetID == "" || !audit.IsPseudonym(r.Actor) {
			t.Errorf("session.create record %+v", r)
		}
	}
	private = append(private, "alice", alice.Email, userPassword, "robot", "127.0.0.1")
	identitytest.CheckPrivate(t, identitytest.Records(t, e.Store), private...)
}

// A client_credentials request with a wrong secret is a failed
// "token.issue" by the service account; with a client id that names
// nothing, by the anonymous actor, and that id gets no pseudonym.
func TestBadClientSecretIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	saID, secret := e.createServiceAccount(t, "robot")
	const nobody = "sa-nobody"
	for _, c := range []struct{ id, secret, wantKind string }{
		{saID, secret + "x", audit.ActorServiceAccount},
		{nobody, secret, audit.ActorAnonymous},
	} {
		n := e.recordCount(t)
		if r := e.clientCredentials(t, c.id, c.secret); r.Status != http.StatusUnauthorized || r.oauthError() != "invalid_client" {
			t.Fatalf("bad client %s: %d %s", c.id, r.Status, r.Body)
		}
		recs := e.recordsSince(t, n)
		if len(recs) != 1 {
			t.Fatalf("bad client %s: records %q, want one", c.id, identitytest.Actions(recs))
		}
		r := recs[0]
		if r.Action != "token.issue" || r.Outcome != audit.OutcomeFailure || r.Reason != "invalid_client" || r.ActorKind != c.wantKind || r.TargetID != "" {
			t.Errorf("bad client %s: record %+v", c.id, r)
		}
		identitytest.CheckPrivate(t, recs, secret, nobody, "127.0.0.1")
	}
	e.tx(t, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Audit().PseudonymSecret(ctx, nobody); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an unknown client id got a pseudonym secret: %v", err)
		}
		return nil
	})
}

// Revocations are recorded: RFC 7009 on an access token (the token) and
// on a refresh token (its session), logout (every session of the user),
// and the session a reused refresh token ends.
func TestRevocationsAreRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.createUser(t, "alice", userPassword)
	type rec struct{ Action, Target, Reason string }
	last := func(n int) rec {
		t.Helper()
		recs := e.recordsSince(t, n)
		if len(recs) != 1 {
			t.Fatalf("records %q, want one", identitytest.Actions(recs))
		}
		r := recs[0]
		if got, err := identitytest.Resolve(t, e.Store, e.Rec, r.Actor); err != nil || got != alice.ID {
			t.Errorf("%s: actor resolves to %q, %v; want alice", r.Action, got, err)
		}
		target := r.TargetKind + ":" + r.TargetID
		if r.TargetKind == "account" && audit.IsPseudonym(r.TargetID) {
			target = "account:pseudonym"
		}
		return rec{r.Action, target, r.Reason}
	}

	tok := e.apiLogin(t, "alice", userPassword)
	jti, _ := claimsOf(t, tok.AccessToken)["jti"].(string)
	sid := provider.SessionOf(jti)
	n := e.recordCount(t)
	if r := revoke(t, e, tok.AccessToken, "access_token"); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if got, want := last(n), (rec{"token.revoke", "token:" + jti, ""}); got != want {
		t.Errorf("access token revocation recorded as %+v, want %+v", got, want)
	}
	n = e.recordCount(t)
	if r := revoke(t, e, tok.RefreshToken, "refresh_token"); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if got, want := last(n), (rec{"token.revoke", "session:" + sid, ""}); got != want {
		t.Errorf("refresh token revocation recorded as %+v, want %+v", got, want)
	}

	code := e.codeFlow(t, "alice", userPassword)
	n = e.recordCount(t)
	q := url.Values{"id_token_hint": {code.IDToken}, "client_id": {provider.CLIClientID}}
	e.get(t, nil, "/oauth/logout?"+q.Encode())
	if got, want := last(n), (rec{"session.revoke", "account:pseudonym", "logout"}); got != want {
		t.Errorf("logout recorded as %+v, want %+v", got, want)
	}

	first := e.codeFlow(t, "alice", userPassword)
	mustTokens(t, e.refresh(t, first.RefreshToken))
	n = e.recordCount(t)
	if r := e.refresh(t, first.RefreshToken); r.oauthError() != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %s", r.Status, r.Body)
	}
	fjti, _ := claimsOf(t, first.AccessToken)["jti"].(string)
	if got, want := last(n), (rec{"session.revoke", "session:" + provider.SessionOf(fjti), "refresh_token_reuse"}); got != want {
		t.Errorf("reuse detection recorded as %+v, want %+v", got, want)
	}
	// Another client's attempt is a denial by that client.
	saID, secret := e.createServiceAccount(t, "robot")
	other := e.apiLogin(t, "alice", userPassword)
	n = e.recordCount(t)
	if r := e.postForm(t, nil, "/oauth/revoke", url.Values{"token": {other.AccessToken}}, saID, secret); r.Status != http.StatusUnauthorized {
		t.Fatalf("foreign revocation: %d %s", r.Status, r.Body)
	}
	recs := e.recordsSince(t, n)
	if len(recs) != 1 || recs[0].Action != "token.revoke" || recs[0].Outcome != audit.OutcomeDenied || recs[0].Reason != "wrong_client" {
		t.Fatalf("foreign revocation recorded as %+v", recs)
	}
	if got, err := identitytest.Resolve(t, e.Store, e.Rec, recs[0].Actor); err != nil || got != saID {
		t.Errorf("foreign revocation: actor resolves to %q, %v; want the service account", got, err)
	}
	identitytest.CheckPrivate(t, identitytest.Records(t, e.Store), "alice", userPassword, tok.AccessToken, tok.RefreshToken,
		first.RefreshToken, code.IDToken, other.AccessToken, secret, "127.0.0.1")
}

// Nothing is issued or revoked unrecorded: while the audit log refuses
// records, token requests, logins and revocations answer 503
// audit_unavailable and change nothing.
func TestProviderFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createUser(t, "alice", userPassword)
	saID, secret := e.createServiceAccount(t, "robot")
	tok := e.apiLogin(t, "alice", userPassword)
	n := e.recordCount(t)

	e.Store.SetFailing(true)
	for name, r := range map[string]response{
		"client_credentials": e.clientCredentials(t, saID, secret),
		"bad client secret":  e.clientCredentials(t, saID, "wrong"),
		"refresh":            e.refresh(t, tok.RefreshToken),
		"api login":          e.postJSON(t, "/api/v1/login", map[string]string{"username": "alice", "password": userPassword}),
		"revoke":             revoke(t, e, tok.AccessToken, "access_token"),
	} {
		var body struct{ Code, AccessToken string }
		r.json(t, &body)
		if r.Status != http.StatusServiceUnavailable || body.Code != "audit_unavailable" || body.AccessToken != "" {
			t.Errorf("%s while the audit log fails: %d %s, want 503 audit_unavailable", name, r.Status, r.Body)
		}
	}
	e.Store.SetFailing(false)

	if recs := e.recordsSince(t, n); len(recs) != 0 {
		t.Errorf("records written while the log failed: %q", identitytest.Actions(recs))
	}
	// The refresh token was not used up, nor the access token revoked.
	if st := e.meStatus(t, tok.AccessToken); st != http.StatusOK {
		t.Errorf("access token after a refused revocation: %d", st)
	}
	mustTokens(t, e.refresh(t, tok.RefreshToken))
}
