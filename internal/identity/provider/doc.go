// Package provider is Rampart's built-in OpenID provider. It wires the
// certified zitadel/oidc "op" library to Rampart's accounts, service
// accounts, signing keys and token families, and serves the login and
// device-approval pages the library leaves to its user.
//
// It owns token issuance and revocation: sessions (token families),
// refresh-token rotation with reuse detection, and the revocation set the
// authentication middleware consults. It never writes a token, secret or
// password to a log, and it never puts privileges into a token.
package provider
