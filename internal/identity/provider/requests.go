package provider

import (
	"crypto/rand"
	"errors"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Pending authorization and device requests live in memory: they are
// short-lived (minutes), and losing them on restart only means logging in
// again. A scaled-out deployment needs them in the store (noted in
// docs/ARCHITECTURE.md).

// errTooManyPending refuses new flows while the table is full, so a flood
// of unauthenticated /authorize or /device_authorization calls cannot
// exhaust memory.
var errTooManyPending = errors.New("too many pending login requests; try again later")

// maxPending bounds each in-memory table.
const maxPending = 10_000

// authRequest is a pending authorization-code flow; it implements
// op.AuthRequest.
type authRequest struct {
	id        string
	createdAt time.Time
	req       oidc.AuthRequest

	// Set by the login page once the user has authenticated.
	done     bool
	subject  string
	authTime time.Time
	amr      []string
	code     string
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                      { return a.id }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return a.amr }
func (a *authRequest) GetAudience() []string              { return []string{APIAudience} }
func (a *authRequest) GetAuthTime() time.Time             { return a.authTime }
func (a *authRequest) GetClientID() string                { return a.req.ClientID }
func (a *authRequest) GetNonce() string                   { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.req.Scopes }
func (a *authRequest) GetState() string                   { return a.req.State }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// pendingRequests holds authorization requests by id and by code.
type pendingRequests struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	byID   map[string]*authRequest
	byCode map[string]string
}

func newPendingRequests(ttl time.Duration, now func() time.Time) *pendingRequests {
	return &pendingRequests{ttl: ttl, now: now, byID: make(map[string]*authRequest), byCode: make(map[string]string)}
}

func (s *pendingRequests) add(req oidc.AuthRequest) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if len(s.byID) >= maxPending {
		return nil, errTooManyPending
	}
	a := &authRequest{id: rand.Text(), createdAt: s.now(), req: req}
	s.byID[a.id] = a
	return a, nil
}

// get returns a copy, so callers cannot race with complete.
func (s *pendingRequests) get(id string) (authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || s.expired(a) {
		return authRequest{}, false
	}
	return *a, true
}

func (s *pendingRequests) byCodeValue(code string) (authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byCode[code]
	if !ok {
		return authRequest{}, false
	}
	a, ok := s.byID[id]
	if !ok || s.expired(a) {
		return authRequest{}, false
	}
	return *a, true
}

// complete records the authenticated user; a request completes once.
func (s *pendingRequests) complete(id, subject string, at time.Time, amr []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || s.expired(a) || a.done {
		return false
	}
	a.done, a.subject, a.authTime, a.amr = true, subject, at, amr
	return true
}

func (s *pendingRequests) saveCode(id, code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || s.expired(a) || !a.done || a.code != "" {
		return false
	}
	a.code = code
	s.byCode[code] = id
	return true
}

func (s *pendingRequests) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.byID[id]; ok {
		delete(s.byCode, a.code)
		delete(s.byID, id)
	}
}

func (s *pendingRequests) expired(a *authRequest) bool { return s.now().Sub(a.createdAt) > s.ttl }

func (s *pendingRequests) expireLocked() {
	for id, a := range s.byID {
		if s.expired(a) {
			delete(s.byCode, a.code)
			delete(s.byID, id)
		}
	}
}

// deviceRequest is a pending device authorization (RFC 8628).
type deviceRequest struct {
	deviceCode string
	userCode   string
	state      op.DeviceAuthorizationState
}

type pendingDevices struct {
	now func() time.Time

	mu         sync.Mutex
	byDevice   map[string]*deviceRequest
	byUserCode map[string]*deviceRequest
}

func newPendingDevices(now func() time.Time) *pendingDevices {
	return &pendingDevices{now: now, byDevice: make(map[string]*deviceRequest), byUserCode: make(map[string]*deviceRequest)}
}

func (s *pendingDevices) add(clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, d := range s.byDevice {
		if now.After(d.state.Expires) {
			delete(s.byUserCode, d.userCode)
			delete(s.byDevice, k)
		}
	}
	if len(s.byDevice) >= maxPending {
		return errTooManyPending
	}
	if _, dup := s.byUserCode[userCode]; dup {
		return op.ErrDuplicateUserCode
	}
	if _, dup := s.byDevice[deviceCode]; dup {
		return op.ErrDuplicateUserCode
	}
	d := &deviceRequest{deviceCode: deviceCode, userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Audience: []string{APIAudience}, Scopes: scopes, Expires: expires,
	}}
	s.byDevice[deviceCode] = d
	s.byUserCode[userCode] = d
	return nil
}

func (s *pendingDevices) state(clientID, deviceCode string) (op.DeviceAuthorizationState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byDevice[deviceCode]
	if !ok || d.state.ClientID != clientID {
		return op.DeviceAuthorizationState{}, false
	}
	st := d.state
	if st.Done || st.Denied {
		// The token (or the denial) is handed out once.
		delete(s.byUserCode, d.userCode)
		delete(s.byDevice, deviceCode)
	}
	return st, true
}

// scopesFor returns the scopes of a pending, unexpired user code.
func (s *pendingDevices) lookup(userCode string) (op.DeviceAuthorizationState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byUserCode[userCode]
	if !ok || s.now().After(d.state.Expires) || d.state.Done || d.state.Denied {
		return op.DeviceAuthorizationState{}, false
	}
	return d.state, true
}

// decide approves (subject set) or denies a pending user code.
func (s *pendingDevices) decide(userCode, subject string, at time.Time, amr []string, approve bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byUserCode[userCode]
	if !ok || s.now().After(d.state.Expires) || d.state.Done || d.state.Denied {
		return false
	}
	if approve {
		d.state.Done, d.state.Subject, d.state.AuthTime, d.state.AMR = true, subject, at, amr
	} else {
		d.state.Denied = true
	}
	return true
}

// maxAssertionLifetime bounds exp - iat of a JWT bearer grant assertion
// (RFC 7523 section 3 lets the server limit it); op alone accepts up to an
// hour.
const maxAssertionLifetime = 5 * time.Minute

// usedAssertions remembers the jti of every accepted JWT bearer assertion
// until it expires, so a captured assertion cannot be replayed (RFC 7523
// section 3, item 7).
type usedAssertions struct {
	mu   sync.Mutex
	seen map[string]time.Time // issuer + " " + jti → expiry
}

func (u *usedAssertions) use(a *oidc.JWTTokenRequest, now time.Time) error {
	iat, exp := a.IssuedAt.AsTime(), a.ExpiresAt.AsTime()
	switch {
	case a.JWTID == "" || len(a.JWTID) > 256:
		return oidc.ErrInvalidGrant().WithDescription("the assertion must carry a jti (at most 256 characters)")
	case iat.IsZero() || exp.Sub(iat) > maxAssertionLifetime:
		return oidc.ErrInvalidGrant().WithDescription("the assertion must carry iat and live at most %v", maxAssertionLifetime)
	}
	key := a.Issuer + " " + a.JWTID
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = make(map[string]time.Time)
	}
	for k, e := range u.seen {
		if now.After(e) {
			delete(u.seen, k)
		}
	}
	if _, dup := u.seen[key]; dup {
		return oidc.ErrInvalidGrant().WithDescription("the assertion was already used")
	}
	if len(u.seen) >= maxPending {
		return oidc.ErrServerError().WithDescription("%s", errTooManyPending.Error())
	}
	u.seen[key] = exp
	return nil
}
