package provider

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/secrets"
	"github.com/rampart-ml/rampart/internal/store"
)

// Endpoint paths (not credentials, whatever their names suggest to gosec
// G101). Discovery is at /.well-known/openid-configuration, as
// the issuer is the server's base URL.
const (
	authorizePath     = "/oauth/authorize"
	tokenPath         = "/oauth/token" // #nosec G101 -- a URL path
	introspectPath    = "/oauth/introspect"
	userinfoPath      = "/oauth/userinfo"
	revokePath        = "/oauth/revoke"
	endSessionPath    = "/oauth/logout"
	keysPath          = "/oauth/keys"
	deviceAuthPath    = "/oauth/device_authorization"
	loginPath         = "/oauth/login"
	devicePath        = "/oauth/device"
	authCallbackPath  = authorizePath + "/callback"
	discoveryPath     = oidc.DiscoveryEndpoint
	pendingRequestTTL = 10 * time.Minute
)

// Options configure a Provider.
type Options struct {
	// Issuer is the server's base URL (https://host:port), exactly as
	// clients reach it; it is the "iss" of every token.
	Issuer      string
	Store       store.Store
	Keys        *signingkeys.Ring
	Login       *identity.PasswordLogin
	Directory   *identity.Directory
	Revocations *identity.Revocations
	Sealer      *secrets.Sealer
	// Recorder records every token issued or revoked and every session
	// started or ended, in the transaction that does it (required).
	Recorder *audit.Recorder
	// AccessTokenLifetime defaults to 5 minutes; SessionLifetime (how long
	// refresh tokens keep a login alive) to 24 hours.
	AccessTokenLifetime time.Duration
	SessionLifetime     time.Duration
	// Insecure allows an http:// issuer (--insecure-http).
	Insecure bool
	Logger   *slog.Logger
	Now      func() time.Time
}

// Provider is the OpenID provider.
type Provider struct {
	opt        Options
	op         *op.Provider
	requests   *pendingRequests
	devices    *pendingDevices
	assertions usedAssertions
	log        *slog.Logger
	now        func() time.Time
}

// New builds the provider; it does not touch the network.
func New(o Options) (*Provider, error) {
	if o.AccessTokenLifetime == 0 {
		o.AccessTokenLifetime = 5 * time.Minute
	}
	if o.SessionLifetime == 0 {
		o.SessionLifetime = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Store == nil || o.Keys == nil || o.Login == nil || o.Directory == nil || o.Revocations == nil || o.Sealer == nil || o.Recorder == nil {
		return nil, errors.New("provider: Store, Keys, Login, Directory, Revocations, Sealer and Recorder are required")
	}
	p := &Provider{
		opt: o, log: o.Logger, now: o.Now,
		requests: newPendingRequests(pendingRequestTTL, o.Now),
		devices:  newPendingDevices(o.Now),
	}
	// Opaque tokens are never issued (every client gets JWTs), but op
	// needs a key for them; a random one per process is enough.
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, err
	}
	cfg := &op.Config{
		CryptoKey:               cryptoKey,
		CodeMethodS256:          true,
		AuthMethodPost:          true,
		AuthMethodPrivateKeyJWT: false,
		GrantTypeRefreshToken:   true,
		SupportedUILocales:      []language.Tag{language.English},
		SupportedScopes:         []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     pendingRequestTTL,
			PollInterval: 5 * time.Second,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	// Browsers on other origins get no CORS access: the web console, when
	// it comes, is served from the issuer's own origin.
	noCORS := &cors.Options{AllowOriginFunc: func(string) bool { return false }}
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint(authorizePath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(tokenPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(introspectPath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(userinfoPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(revokePath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(endSessionPath)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(keysPath)),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint(deviceAuthPath)),
		op.WithCORSOptions(noCORS),
	}
	if o.Insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	var err error
	if p.op, err = op.NewProvider(cfg, storage{p}, op.StaticIssuer(o.Issuer), opts...); err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	return p, nil
}

// Mount registers the protocol endpoints, the login and device pages and
// POST /api/v1/login. They authenticate their callers themselves (client
// credentials, user passwords), so they are public routes.
func (p *Provider) Mount(api *httpapi.Server) {
	opHandler := p.op
	for _, path := range []string{discoveryPath, authorizePath, authCallbackPath, tokenPath, introspectPath,
		userinfoPath, revokePath, keysPath, deviceAuthPath} {
		api.Handle(httpapi.Route{Pattern: path, Public: true, Handler: raw(opHandler)})
	}
	api.Handle(httpapi.Route{Pattern: endSessionPath, Public: true, Handler: raw(formParsed(opHandler))})
	api.Handle(httpapi.Route{Pattern: "GET " + loginPath, Public: true, Handler: p.loginPage})
	api.Handle(httpapi.Route{Pattern: "POST " + loginPath, Public: true, Handler: p.loginSubmit})
	api.Handle(httpapi.Route{Pattern: "GET " + devicePath, Public: true, Handler: p.devicePage})
	api.Handle(httpapi.Route{Pattern: "POST " + devicePath, Public: true, Handler: p.deviceSubmit})
	api.Handle(httpapi.Route{Pattern: "POST /api/v1/login", Public: true, Handler: p.apiLogin})
}

// formParsed answers a query or form that does not parse with 400
// invalid_request; op's end-session endpoint answers it with a 500.
func formParsed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("malformed query or form"), nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// raw adapts one of op's handlers, which write their own OAuth-format
// errors. The response is held back until the request is over: if an
// audit record could not be written meanwhile (see serverError), op's
// answer (a 500 server_error at best, a token at worst) is dropped and
// the request fails with the audit error, which answers 503.
func raw(h http.Handler) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		f := &auditFailure{}
		held := &heldResponse{header: make(http.Header)}
		h.ServeHTTP(held, r.WithContext(context.WithValue(r.Context(), auditFailureKey{}, f)))
		if err := f.get(); err != nil {
			return err
		}
		held.writeTo(w)
		return nil
	}
}

// auditFailure carries an audit write failure out of op's storage
// callbacks, which can only return OAuth errors, to raw.
type auditFailure struct {
	mu  sync.Mutex
	err error
}

type auditFailureKey struct{}

func (f *auditFailure) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *auditFailure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// serverError is op's server_error for err. An audit write failure is also
// noted for raw, so the client gets 503 audit_unavailable.
func serverError(ctx context.Context, err error) *oidc.Error {
	if f, ok := ctx.Value(auditFailureKey{}).(*auditFailure); ok && errors.Is(err, audit.ErrWrite) {
		f.set(err)
	}
	return oidc.ErrServerError().WithParent(err)
}

// heldResponse is a response kept in memory until raw releases it.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

func (h *heldResponse) writeTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), h.header)
	w.WriteHeader(cmp.Or(h.status, http.StatusOK))
	_, _ = w.Write(h.body.Bytes()) // a failed write means the client went away
}

// ---- sessions and tokens ----

// startSession starts a session for info ending at end, with refresh as
// its first refresh token unless that is empty, and returns the id of its
// first access token. The session and the token are recorded
// ("session.create", "token.issue", reason: the grant type) in the same
// transaction.
func (p *Provider) startSession(ctx context.Context, info tokenRequestInfo, now, end time.Time, refresh string) (string, error) {
	if _, err := p.opt.Directory.Lookup(ctx, info.subject); err != nil {
		if errors.Is(err, identity.ErrInactive) {
			return "", oidc.ErrInvalidGrant().WithDescription("the account is disabled or no longer exists")
		}
		return "", serverError(ctx, err)
	}
	sid := rand.Text()
	tokenID := sid + "." + rand.Text()
	actor := identity.AuditActor(info.subject)
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		err := tx.Sessions().CreateSession(ctx, store.Session{
			ID: sid, Subject: info.subject, ClientID: info.clientID, Scopes: info.scopes, AMR: info.amr,
			AuthTime: info.authTime, ExpiresAt: end, CreatedAt: now,
		})
		if err != nil {
			return err
		}
		if refresh != "" {
			err := tx.Sessions().CreateRefreshToken(ctx, store.RefreshToken{
				Hash: hashToken(refresh), SessionID: sid, CreatedAt: now, ExpiresAt: end,
			})
			if err != nil {
				return err
			}
		}
		err = p.opt.Recorder.Record(ctx, tx, audit.Entry{
			Action: "session.create", Target: audit.Target{Kind: "session", ID: sid}, Reason: info.grant, Actor: actor,
		})
		if err != nil {
			return err
		}
		return p.opt.Recorder.Record(ctx, tx, tokenIssued(tokenID, info.grant, info.subject))
	})
	if err != nil {
		return "", serverError(ctx, err)
	}
	return tokenID, nil
}

// tokenIssued is the audit entry of access token tokenID issued to subject
// by grant.
func tokenIssued(tokenID, grant, subject string) audit.Entry {
	return audit.Entry{
		Action: "token.issue", Target: audit.Target{Kind: "token", ID: tokenID}, Reason: grant,
		Actor: identity.AuditActor(subject),
	}
}

var errRefreshInvalid = oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired or revoked")

// lookupRefreshToken validates a presented refresh token. A token that was
// already exchanged is a replay (stolen or leaked): the whole session is
// revoked, so neither the thief nor the user can go on with it.
func (p *Provider) lookupRefreshToken(ctx context.Context, token string) (*refreshRequest, error) {
	if !strings.HasPrefix(token, refreshTokenPrefix) || len(token) > 256 {
		return nil, errRefreshInvalid
	}
	hash := hashToken(token)
	rt, sess, err := p.refreshTokenSession(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRefreshInvalid
	}
	if err != nil {
		return nil, serverError(ctx, err)
	}
	now := p.now()
	if !rt.UsedAt.IsZero() {
		if err := p.reuseDetected(ctx, sess); err != nil {
			return nil, err
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token was already used; the session has been revoked")
	}
	if !sess.RevokedAt.IsZero() || !now.Before(rt.ExpiresAt) || !now.Before(sess.ExpiresAt) {
		return nil, errRefreshInvalid
	}
	if _, err := p.opt.Directory.Lookup(ctx, sess.Subject); err != nil {
		return nil, errRefreshInvalid
	}
	return &refreshRequest{session: sess, hash: hash, scopes: sess.Scopes}, nil
}

// reuseDetected revokes the session of a refresh token presented twice
// (stolen or leaked). It returns an error only when the revocation (or its
// record) failed; the caller refuses the request either way.
func (p *Provider) reuseDetected(ctx context.Context, sess store.Session) error {
	p.log.Warn("refresh token reuse detected: revoking the session", slog.String("session", sess.ID), slog.String("client", sess.ClientID))
	err := p.revokeSession(ctx, sess, audit.Entry{
		Action: "session.revoke", Target: audit.Target{Kind: "session", ID: sess.ID}, Reason: "refresh_token_reuse",
		Actor: identity.AuditActor(sess.Subject),
	})
	if err != nil {
		p.log.Error("revoke session after refresh token reuse", slog.String("session", sess.ID), slog.Any("error", err))
		return serverError(ctx, err)
	}
	return nil
}

// rotateRefreshToken marks the presented token used and issues its
// successor in the same session, in one transaction with the record of
// the new access token.
func (p *Provider) rotateRefreshToken(ctx context.Context, r *refreshRequest, now time.Time) (string, string, time.Time, error) {
	next := refreshTokenPrefix + rand.Text() + rand.Text()
	tokenID := r.session.ID + "." + rand.Text()
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Sessions().UseRefreshToken(ctx, r.hash, now); err != nil {
			return err
		}
		err := tx.Sessions().CreateRefreshToken(ctx, store.RefreshToken{
			Hash: hashToken(next), SessionID: r.session.ID, CreatedAt: now, ExpiresAt: r.session.ExpiresAt,
		})
		if err != nil {
			return err
		}
		return p.opt.Recorder.Record(ctx, tx, tokenIssued(tokenID, grantRefreshToken, r.session.Subject))
	})
	if errors.Is(err, store.ErrConflict) {
		// Two exchanges of one token raced: one of them is a replay.
		if err := p.reuseDetected(ctx, r.session); err != nil {
			return "", "", time.Time{}, err
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token was already used; the session has been revoked")
	}
	if err != nil {
		return "", "", time.Time{}, serverError(ctx, err)
	}
	exp := minTime(now.Add(p.opt.AccessTokenLifetime), r.session.ExpiresAt)
	return tokenID, next, exp, nil
}

// revokeSession revokes sess and records e in the same transaction.
func (p *Provider) revokeSession(ctx context.Context, sess store.Session, e audit.Entry) error {
	now := p.now()
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Sessions().RevokeSession(ctx, sess.ID, now); err != nil {
			return err
		}
		return p.opt.Recorder.Record(ctx, tx, e)
	})
	if err != nil {
		return err
	}
	p.opt.Revocations.AddSession(store.RevokedToken{ID: sess.ID, ExpiresAt: sess.ExpiresAt})
	return nil
}

// RevokeAllSessions revokes every session of subject (logout everywhere,
// password change, account disabled) and returns how many it revoked; the
// audit record names the principal in ctx as the actor.
func (p *Provider) RevokeAllSessions(ctx context.Context, subject, reason string) (int, error) {
	return RevokeAllSessions(ctx, p.opt.Store, p.opt.Revocations, p.opt.Recorder, subject, reason, p.now())
}

// RevokeAllSessions is the store-level form, for callers without a Provider
// (account management). When it revokes any, it records "session.revoke"
// with reason (machine text: "logout", "password_change", ...) on the
// subject in the same transaction; the actor is the principal in ctx.
func RevokeAllSessions(ctx context.Context, st store.Store, rev *identity.Revocations, rec *audit.Recorder, subject, reason string, now time.Time) (int, error) {
	return revokeAllSessions(ctx, st, rev, rec, subject, now, audit.Entry{Reason: reason})
}

// revokeAllSessions is RevokeAllSessions with the record's actor and
// reason given in e.
func revokeAllSessions(ctx context.Context, st store.Store, rev *identity.Revocations, rec *audit.Recorder, subject string, now time.Time, e audit.Entry) (int, error) {
	e.Action, e.Target, e.TargetSubject = "session.revoke", audit.Target{Kind: identity.TargetKind(subject)}, subject
	var ids []string
	var sessions []store.Session
	err := st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if ids, err = tx.Sessions().RevokeSessionsOf(ctx, subject, now); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil // nothing happened, nothing to record
		}
		for _, id := range ids {
			s, err := tx.Sessions().SessionByID(ctx, id)
			if err != nil {
				return err
			}
			sessions = append(sessions, s)
		}
		return rec.Record(ctx, tx, e)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	for _, s := range sessions {
		rev.AddSession(store.RevokedToken{ID: s.ID, ExpiresAt: s.ExpiresAt})
	}
	return len(ids), nil
}

// revoke implements RFC 7009 for a token (or token id) presented by
// clientID. Unknown tokens succeed silently, as the RFC asks; a token that
// belongs to another client is refused.
func (p *Provider) revoke(ctx context.Context, tokenOrID, subject, clientID string) error {
	if subject == "" {
		// op found no refresh token and could not verify an access token:
		// what was sent is not a token this provider issued (RFC 7009
		// section 2.2: answer 200). Internal ids ("rt:<hash>", "<sid>.x")
		// sent as the token must not revoke anything.
		return nil
	}
	now := p.now()
	if rest, ok := strings.CutPrefix(tokenOrID, refreshTokenIDPrefix); ok {
		hash, err := hex.DecodeString(rest)
		if err != nil || len(hash) != sha256.Size {
			return nil
		}
		_, sess, err := p.refreshTokenSession(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if sess.ClientID != clientID {
			return p.wrongClient(ctx, clientID, audit.Target{Kind: "session", ID: sess.ID})
		}
		// A refresh token stands for its whole session.
		return p.revokeSession(ctx, sess, audit.Entry{
			Action: "token.revoke", Target: audit.Target{Kind: "session", ID: sess.ID}, Actor: identity.AuditActor(subject),
		})
	}
	if !ValidTokenID(tokenOrID) {
		return nil
	}
	if sid := SessionOf(tokenOrID); sid != "" {
		sess, err := p.session(ctx, sid)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if sess.ClientID != clientID {
			return p.wrongClient(ctx, clientID, audit.Target{Kind: "token", ID: tokenOrID})
		}
	} else if subject != clientID {
		// Standalone tokens are a service account's own: sub = client id.
		return p.wrongClient(ctx, clientID, audit.Target{Kind: "token", ID: tokenOrID})
	}
	t := store.RevokedToken{ID: tokenOrID, ExpiresAt: now.Add(p.opt.AccessTokenLifetime + time.Minute)}
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Sessions().RevokeAccessToken(ctx, t); err != nil {
			return err
		}
		return p.opt.Recorder.Record(ctx, tx, audit.Entry{
			Action: "token.revoke", Target: audit.Target{Kind: "token", ID: tokenOrID}, Actor: identity.AuditActor(subject),
		})
	})
	if err != nil {
		return err
	}
	p.opt.Revocations.AddToken(t)
	return nil
}

// wrongClient records and refuses clientID's attempt to revoke a token
// that was issued to another client. The actor is the service account
// that asked, or anonymous for the CLI (a public client: anyone can say
// they are it).
func (p *Provider) wrongClient(ctx context.Context, clientID string, target audit.Target) error {
	actor := &audit.Actor{ID: audit.ActorAnonymous, Kind: audit.ActorAnonymous}
	if strings.HasPrefix(clientID, identity.ServiceAccountIDPrefix) {
		actor = identity.AuditActor(clientID) // authenticated by its secret
	}
	err := p.opt.Recorder.Write(ctx, audit.Entry{
		Action: "token.revoke", Target: target, Outcome: audit.OutcomeDenied, Reason: "wrong_client", Actor: actor,
	})
	if err != nil {
		return err
	}
	return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
}

// checkTokenActive refuses revoked tokens and inactive subjects (for
// userinfo and introspection, which op verifies only cryptographically).
func (p *Provider) checkTokenActive(ctx context.Context, tokenID, subject string) error {
	if !ValidTokenID(tokenID) {
		return errors.New("not an access token")
	}
	revoked, err := p.opt.Revocations.Revoked(ctx, tokenID, SessionOf(tokenID))
	if err != nil {
		return err
	}
	if revoked {
		return errors.New("token revoked")
	}
	_, err = p.opt.Directory.Lookup(ctx, subject)
	return err
}

func (p *Provider) fillUserinfo(ctx context.Context, info *oidc.UserInfo, subject string, scopes []string) error {
	info.Subject = subject
	var acct store.Account
	if strings.HasPrefix(subject, identity.ServiceAccountIDPrefix) {
		sub, err := p.opt.Directory.Lookup(ctx, subject)
		if err != nil {
			return err
		}
		info.PreferredUsername = sub.Principal.Name
		return nil
	}
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		acct, err = tx.Accounts().AccountByID(ctx, subject)
		return err
	})
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = acct.Name
		case oidc.ScopeEmail:
			info.Email = acct.Email
		}
	}
	return nil
}

// errBadClient refuses unknown, inactive or wrong client credentials.
var errBadClient = errors.New("invalid client credentials")

// checkClientSecret authenticates a service account by secret; it returns
// errBadClient or an oidc server error.
func (p *Provider) checkClientSecret(ctx context.Context, id, secret string) error {
	if !strings.HasPrefix(id, identity.ServiceAccountIDPrefix) || secret == "" || len(secret) > 256 {
		return errBadClient
	}
	if _, err := p.opt.Directory.Lookup(ctx, id); err != nil {
		if errors.Is(err, identity.ErrInactive) {
			return errBadClient
		}
		return serverError(ctx, err)
	}
	var secrets []store.ClientSecret
	err := p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		secrets, err = tx.ServiceAccounts().ClientSecrets(ctx, id)
		return err
	})
	if err != nil {
		return serverError(ctx, err)
	}
	if !checkSecret(secret, secrets, p.now()) {
		return errBadClient
	}
	return nil
}

// recordBadClient records a client_credentials request refused for its
// client credentials ("token.issue", failure, "invalid_client"). The actor
// is the service account clientID names, if there is one, else anonymous:
// an id that names nothing is never recorded, so a stranger's guesses
// create no pseudonyms.
func (p *Provider) recordBadClient(ctx context.Context, clientID string) error {
	return p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		actor := &audit.Actor{ID: audit.ActorAnonymous, Kind: audit.ActorAnonymous}
		if strings.HasPrefix(clientID, identity.ServiceAccountIDPrefix) && len(clientID) <= 128 {
			_, err := tx.ServiceAccounts().ServiceAccountByID(ctx, clientID)
			switch {
			case err == nil:
				actor = identity.AuditActor(clientID)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		return p.opt.Recorder.Record(ctx, tx, audit.Entry{
			Action: "token.issue", Target: audit.Target{Kind: "token"}, Outcome: audit.OutcomeFailure,
			Reason: "invalid_client", Actor: actor,
		})
	})
}

// refreshTokenSession loads the refresh token with this hash and its
// session; store.ErrNotFound if either is missing.
func (p *Provider) refreshTokenSession(ctx context.Context, hash []byte) (rt store.RefreshToken, sess store.Session, err error) {
	err = p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		if rt, err = tx.Sessions().RefreshTokenByHash(ctx, hash); err != nil {
			return err
		}
		sess, err = tx.Sessions().SessionByID(ctx, rt.SessionID)
		return err
	})
	return rt, sess, err
}

// session loads session id; store.ErrNotFound if it is missing.
func (p *Provider) session(ctx context.Context, id string) (sess store.Session, err error) {
	err = p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		sess, err = tx.Sessions().SessionByID(ctx, id)
		return err
	})
	return sess, err
}
