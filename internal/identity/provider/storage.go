package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/signingkeys"
	"github.com/rampart-ml/rampart/internal/store"
)

// storage implements op.Storage and the optional interfaces Rampart uses.
// It is separate from Provider so op's callbacks are not Provider's API.
type storage struct{ p *Provider }

var (
	_ op.Storage                    = storage{}
	_ op.ClientCredentialsStorage   = storage{}
	_ op.DeviceAuthorizationStorage = storage{}
	_ op.CanSetUserinfoFromRequest  = storage{}
	_ op.JWTProfileTokenStorage     = storage{}
)

// Token ids. A session's access tokens have the id "<session>.<random>" so
// revoking the session revokes them; tokens outside a session (client
// credentials, JWT bearer grant) have "cc.<random>". Refresh tokens are
// "rt_<random>" and referred to internally as "rt:<hex sha256>".
const (
	standaloneTokenPrefix = "cc."
	refreshTokenPrefix    = "rt_"
	refreshTokenIDPrefix  = "rt:"
)

// SessionOf returns the session id encoded in an access token id ("" for
// tokens outside a session or malformed ids).
func SessionOf(tokenID string) string {
	sid, _, ok := strings.Cut(tokenID, ".")
	if !ok || sid == "cc" {
		return ""
	}
	return sid
}

// ValidTokenID reports whether id has the shape of a Rampart access token
// id; ID tokens (no jti) and foreign tokens do not.
func ValidTokenID(id string) bool {
	sid, rnd, ok := strings.Cut(id, ".")
	return ok && sid != "" && rnd != "" && len(id) <= 128
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// ---- authorization requests ----

func (s storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_type=code is supported")
	}
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("prompt=none is not supported: Rampart keeps no browser session")
	}
	a, err := s.p.requests.add(*req)
	if err != nil {
		return nil, oidc.ErrServerError().WithDescription("%s", err.Error())
	}
	return a, nil
}

func (s storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	a, ok := s.p.requests.get(id)
	if !ok {
		return nil, errors.New("authorization request not found or expired")
	}
	return &a, nil
}

func (s storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	a, ok := s.p.requests.byCodeValue(code)
	if !ok {
		return nil, errors.New("authorization code not found, used or expired")
	}
	return &a, nil
}

func (s storage) SaveAuthCode(_ context.Context, id, code string) error {
	if !s.p.requests.saveCode(id, code) {
		return errors.New("authorization request not found, not authenticated or already used")
	}
	return nil
}

func (s storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.p.requests.remove(id)
	return nil
}

// ---- device authorization (RFC 8628) ----

func (s storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if clientID != CLIClientID {
		return oidc.ErrUnauthorizedClient().WithDescription("only the CLI client may use the device flow")
	}
	return s.p.devices.add(clientID, deviceCode, userCode, expires, scopes)
}

func (s storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	st, ok := s.p.devices.state(clientID, deviceCode)
	if !ok {
		return nil, oidc.ErrExpiredDeviceCode().WithDescription("unknown or expired device code")
	}
	return &st, nil
}

// ---- token issuance ----

// Grant types, as the reason of "token.issue" and "session.create"
// records.
const (
	grantAuthorizationCode = "authorization_code"
	grantDeviceCode        = "device_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	grantJWTBearer         = "jwt-bearer"
	// grantPassword is POST /api/v1/login: a user name and password
	// exchanged for tokens directly.
	grantPassword = "password"
)

// tokenRequestInfo is what a session needs from any token request.
type tokenRequestInfo struct {
	subject, clientID string
	scopes, amr       []string
	authTime          time.Time
	grant             string
}

func infoOf(req op.TokenRequest) (tokenRequestInfo, bool) {
	switch r := req.(type) {
	case *authRequest:
		grant := grantAuthorizationCode
		if r.id == apiLoginID {
			grant = grantPassword
		}
		return tokenRequestInfo{r.subject, r.req.ClientID, r.req.Scopes, r.amr, r.authTime, grant}, true
	case *op.DeviceAuthorizationState:
		return tokenRequestInfo{r.Subject, r.ClientID, r.Scopes, r.AMR, r.AuthTime, grantDeviceCode}, true
	}
	return tokenRequestInfo{}, false
}

func (s storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	now := s.p.now()
	exp := now.Add(s.p.opt.AccessTokenLifetime)
	if info, ok := infoOf(req); ok {
		// A login without refresh still gets a session, so logout and
		// password changes revoke its access token.
		tokenID, err := s.p.startSession(ctx, info, now, exp, "")
		if err != nil {
			return "", time.Time{}, err
		}
		return tokenID, exp, nil
	}
	switch r := req.(type) {
	case clientCredentialsRequest, *oidc.JWTTokenRequest:
		if _, err := s.p.opt.Directory.Lookup(ctx, req.GetSubject()); err != nil {
			return "", time.Time{}, oidc.ErrInvalidClient().WithDescription("service account is disabled or expired")
		}
		if jr, ok := r.(*oidc.JWTTokenRequest); ok {
			if err := s.p.assertions.use(jr, s.p.now()); err != nil {
				return "", time.Time{}, err
			}
			// op signs the token for req.GetAudience(), which for the
			// JWT bearer grant is the assertion's audience (the issuer,
			// or whatever the client wrote): tokens are for the API.
			jr.Audience = []string{APIAudience}
		}
		// Nothing is stored for these tokens: the record is written, and
		// committed, before the token exists.
		tokenID, grant := standaloneTokenPrefix+rand.Text(), grantClientCredentials
		if _, ok := r.(*oidc.JWTTokenRequest); ok {
			grant = grantJWTBearer
		}
		if err := s.p.opt.Recorder.Write(ctx, tokenIssued(tokenID, grant, req.GetSubject())); err != nil {
			return "", time.Time{}, serverError(ctx, err)
		}
		return tokenID, exp, nil
	}
	return "", time.Time{}, oidc.ErrServerError().WithParent(fmt.Errorf("unexpected token request %T", req))
}

func (s storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.p.now()
	if r, ok := req.(*refreshRequest); ok {
		return s.p.rotateRefreshToken(ctx, r, now)
	}
	info, ok := infoOf(req)
	if !ok {
		return "", "", time.Time{}, oidc.ErrServerError().WithParent(fmt.Errorf("unexpected refresh token request %T", req))
	}
	sessionEnd := now.Add(s.p.opt.SessionLifetime)
	refresh := refreshTokenPrefix + rand.Text() + rand.Text()
	tokenID, err := s.p.startSession(ctx, info, now, sessionEnd, refresh)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return tokenID, refresh, minTime(now.Add(s.p.opt.AccessTokenLifetime), sessionEnd), nil
}

// refreshRequest is a validated refresh token; it implements
// op.RefreshTokenRequest.
type refreshRequest struct {
	session store.Session
	hash    []byte
	scopes  []string
}

func (r *refreshRequest) GetAMR() []string             { return r.session.AMR }
func (r *refreshRequest) GetAudience() []string        { return []string{APIAudience} }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.session.AuthTime }
func (r *refreshRequest) GetClientID() string          { return r.session.ClientID }
func (r *refreshRequest) GetScopes() []string          { return r.scopes }
func (r *refreshRequest) GetSubject() string           { return r.session.Subject }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.scopes = sc }

func (s storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	r, err := s.p.lookupRefreshToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s storage) GetRefreshTokenInfo(ctx context.Context, _ string, token string) (string, string, error) {
	if !strings.HasPrefix(token, refreshTokenPrefix) {
		return "", "", op.ErrInvalidRefreshToken
	}
	hash := hashToken(token)
	_, sess, err := s.p.refreshTokenSession(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return sess.Subject, refreshTokenIDPrefix + hex.EncodeToString(hash), nil
}

func (s storage) RevokeToken(ctx context.Context, tokenOrID, subject, clientID string) *oidc.Error {
	err := s.p.revoke(ctx, tokenOrID, subject, clientID)
	var oe *oidc.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oe):
		return oe
	default:
		s.p.log.Error("revoke token", slog.Any("error", err))
		return serverError(ctx, err)
	}
}

// TerminateSession is the logout of end-session: nobody is authenticated,
// so the subject whose ID token came with it is the actor.
func (s storage) TerminateSession(ctx context.Context, userID, _ string) error {
	_, err := revokeAllSessions(ctx, s.p.opt.Store, s.p.opt.Revocations, s.p.opt.Recorder, userID, s.p.now(),
		audit.Entry{Reason: "logout", Actor: identity.AuditActor(userID)})
	if err != nil {
		return serverError(ctx, err)
	}
	return nil
}

// ---- keys ----

type signingKey struct{ k signingkeys.Key }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Algorithm)
}
func (k signingKey) Key() any   { return k.k.Private }
func (k signingKey) ID() string { return k.k.ID }

type publicKey struct{ k signingkeys.Key }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Private.Public().(*ecdsa.PublicKey) }

func (s storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.p.opt.Keys.Signing(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

func (s storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{signingkeys.Algorithm}, nil
}

func (s storage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.p.opt.Keys.Published(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// ---- clients ----

func (s storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if id == CLIClientID {
		return s.p.cliClient(), nil
	}
	// An oidc.Error: op passes plain errors from here on as server_error
	// (500) on some endpoints (device authorization, end session).
	if !strings.HasPrefix(id, identity.ServiceAccountIDPrefix) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if _, err := s.p.opt.Directory.Lookup(ctx, id); err != nil {
		if errors.Is(err, identity.ErrInactive) {
			return nil, oidc.ErrInvalidClient().WithDescription("unknown, disabled or expired client")
		}
		return nil, serverError(ctx, err)
	}
	return s.p.serviceAccountClient(id), nil
}

// AuthorizeClientIDSecret authenticates a client on the other endpoints
// (revocation, introspection); a refusal there issues nothing, so it is
// not recorded.
func (s storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	return s.p.checkClientSecret(ctx, id, secret)
}

// ClientCredentials authenticates a client_credentials grant; a refusal
// is recorded as a failed "token.issue".
func (s storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.p.checkClientSecret(ctx, id, secret); err != nil {
		if errors.Is(err, errBadClient) {
			if rerr := s.p.recordBadClient(ctx, id); rerr != nil {
				return nil, serverError(ctx, rerr)
			}
		}
		return nil, err
	}
	return s.p.serviceAccountClient(id), nil
}

// clientCredentialsRequest is a client_credentials grant.
type clientCredentialsRequest struct {
	subject string
	scopes  []string
}

func (r clientCredentialsRequest) GetSubject() string    { return r.subject }
func (r clientCredentialsRequest) GetAudience() []string { return []string{APIAudience} }
func (r clientCredentialsRequest) GetScopes() []string   { return r.scopes }

func (s storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return clientCredentialsRequest{subject: id, scopes: allowedScopes(scopes)}, nil
}

func (s storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	if _, err := s.p.opt.Directory.Lookup(ctx, clientID); err != nil {
		return nil, errors.New("unknown, disabled or expired client")
	}
	now := s.p.now()
	var keys []store.ClientKey
	err := s.p.opt.Store.InTx(ctx, func(tx store.Tx) error {
		var err error
		keys, err = tx.ServiceAccounts().ClientKeys(ctx, clientID)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.ID != keyID || (!k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PublicKey, &jwk); err != nil {
			return nil, fmt.Errorf("client key %s: %w", k.ID, err)
		}
		return &jwk, nil
	}
	return nil, errors.New("unknown or expired client key")
}

func (s storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return allowedScopes(scopes), nil
}

func (s storage) JWTProfileTokenType(context.Context, op.TokenRequest) (op.AccessTokenType, error) {
	return op.AccessTokenTypeJWT, nil
}

// allowedScopes keeps the scopes Rampart knows. Scopes never carry
// privileges: those are grants, looked up per request.
func allowedScopes(in []string) []string {
	var out []string
	for _, sc := range in {
		switch sc {
		case oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess:
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// ---- user info ----

func (s storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated in op; SetUserinfoFromRequest does the work
}

func (s storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.p.fillUserinfo(ctx, info, req.GetSubject(), scopes)
}

func (s storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	if err := s.p.checkTokenActive(ctx, tokenID, subject); err != nil {
		return err
	}
	return s.p.fillUserinfo(ctx, info, subject, []string{oidc.ScopeProfile, oidc.ScopeEmail})
}

func (s storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	if err := s.p.checkTokenActive(ctx, tokenID, subject); err != nil {
		return err
	}
	sub, err := s.p.opt.Directory.Lookup(ctx, subject)
	if err != nil {
		return err
	}
	resp.Subject = subject
	resp.Username = sub.Principal.Name
	resp.TokenType = oidc.BearerToken
	resp.Audience = []string{APIAudience}
	return nil
}

func (s storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil // privileges are never put into tokens
}

func (s storage) Health(ctx context.Context) error { return s.p.opt.Store.Ping(ctx) }

// checkSecret compares secret with the stored hashes in constant time.
func checkSecret(secret string, secrets []store.ClientSecret, now time.Time) bool {
	h := hashToken(secret)
	ok := 0
	for _, cs := range secrets {
		valid := cs.ExpiresAt.IsZero() || now.Before(cs.ExpiresAt)
		if subtle.ConstantTimeCompare(h, cs.Hash) == 1 && valid {
			ok = 1
		}
	}
	return ok == 1
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
