package provider

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// CLIClientID is the public client the rampart CLI (and scripts using
// POST /api/v1/login) log in with. It has no secret: the authorization
// code flow requires PKCE (S256) and redirects only to a loopback address
// (any port, RFC 8252 section 7.3).
const CLIClientID = "rampart-cli"

// APIAudience is the audience of every Rampart access token; the
// authentication middleware refuses tokens without it.
const APIAudience = "rampart"

// client implements op.Client for the CLI and for service accounts.
type client struct {
	id            string
	redirectURIs  []string
	appType       op.ApplicationType
	authMethod    oidc.AuthMethod
	responseTypes []oidc.ResponseType
	grantTypes    []oidc.GrantType
	loginURL      func(string) string
	idTokenLife   time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string     { return c.redirectURIs }
func (c *client) ApplicationType() op.ApplicationType  { return c.appType }
func (c *client) AuthMethod() oidc.AuthMethod          { return c.authMethod }
func (c *client) ResponseTypes() []oidc.ResponseType   { return c.responseTypes }
func (c *client) GrantTypes() []oidc.GrantType         { return c.grantTypes }
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTokenLife }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (p *Provider) cliClient() *client {
	return &client{
		id:            CLIClientID,
		redirectURIs:  []string{"http://127.0.0.1/callback", "http://[::1]/callback", "http://localhost/callback"},
		appType:       op.ApplicationTypeNative,
		authMethod:    oidc.AuthMethodNone,
		responseTypes: []oidc.ResponseType{oidc.ResponseTypeCode},
		grantTypes:    []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode},
		loginURL:      func(id string) string { return loginPath + "?authRequestID=" + id },
		idTokenLife:   p.opt.AccessTokenLifetime,
	}
}

// serviceAccountClient is a confidential client: client_credentials with a
// secret, or the JWT bearer grant (RFC 7523) signed with a registered key.
func (p *Provider) serviceAccountClient(id string) *client {
	return &client{
		id:          id,
		appType:     op.ApplicationTypeWeb,
		authMethod:  oidc.AuthMethodBasic,
		grantTypes:  []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeBearer},
		loginURL:    func(string) string { return "" },
		idTokenLife: p.opt.AccessTokenLifetime,
	}
}
