// Package federation accepts ID tokens and JWT access tokens issued by
// trusted external OpenID Connect providers and maps them to a
// [principal.Principal].
//
// It owns the configuration of those issuers ([Issuer], validated with
// [Issuer.Validate]) and the verification of their tokens ([Verifier]).
// Cryptographic and claim checks (issuer, audience, expiry, signature with
// the issuer's JWKS) are delegated to github.com/coreos/go-oidc; this package
// adds the routing by issuer, the algorithm allow-list, a size bound, the
// classification of failures and the claim mapping.
//
// # Verification
//
// [Verifier.Verify] first peeks at the unverified "iss" claim of a compact
// JWS no larger than 16 KiB. A string that cannot be parsed that far, or
// that names an issuer that is not configured, is not ours: ok=false with
// no error, so another authenticator can try it. Anything else is ours and
// ends in one of three ways:
//
//   - a principal: ID "<Name>:<sub>", Kind [principal.User], Name from the
//     username claim, Groups from the groups claim each prefixed "<Name>:"
//     (so one issuer can never assert another's groups, nor a local group),
//     and Admin always false: an external IdP never grants admin;
//   - a [*RejectedError] naming the check that failed ([Reason]): the
//     token is not acceptable, which callers treat like a wrong password
//     (401, never 5xx), logging the reason;
//   - an error wrapping [ErrUnavailable]: discovery or the JWKS could not be
//     fetched, a technical failure (503).
//
// Discovery happens lazily, on the first token for an issuer, and its result
// is kept for the life of the Verifier; a failed discovery is retried at most
// every 30 s, and tokens for that issuer fail with [ErrUnavailable] in
// between. go-oidc fetches the JWKS on first use and again whenever no cached
// key verifies a token (key rotation; concurrent refreshes are shared). As
// go-oidc never forgets a key, a fetched key set is trusted for at most
// [KeySetMaxAge]: after that the next token is checked against a fresh copy,
// so a key the issuer withdrew stops verifying within that time. If the
// issuer cannot be reached then, the known keys stay in use and the refresh
// is retried every 30 s.
//
// # Claim mapping
//
//   - sub must be present, at most 255 bytes of UTF-8 without control
//     characters ([ReasonMissingSubject], [ReasonInvalidClaim]).
//   - Name is the first usable string among the configured username claim
//     (default preferred_username), email and sub. Display only.
//   - Groups come from the configured groups claim (default "groups"). It
//     must be a JSON array of at most 256 non-empty strings of at most 256
//     bytes without control characters; duplicates are dropped. Anything
//     else (a single string, an object, too many or bad entries) is ignored
//     as a whole, the user gets no groups, and a debug message names the
//     issuer and the problem. Ignoring rather than rejecting fails closed for
//     authorisation (no group, no group grant) while a user with an odd
//     directory entry can still reach what needs no group.
//
// # What it must never do
//
// It never logs, and never puts in an error, a token or any claim that may
// be personal data (sub, names, email, groups): logs carry the issuer's
// short name and the reason only. It performs no I/O in [New]; the network
// is used only for discovery and the JWKS of configured issuers, through
// the configured HTTP client, with a timeout and a 1 MiB response bound. It
// never grants admin.
package federation
