// Package access decides who may do what to which target. It makes
// decisions and performs no I/O: no database, no network, no clock, no
// logging. Callers load the grants, build an immutable Policy from them and
// ask it; the HTTP layer (internal/authz) owns caching and enforcement.
//
// # Model
//
// The model follows the MXE guide ("MXE Access Control, Authentication, and
// Authorization") where it speaks and extends it where it is silent:
//
//   - Targets have a Kind (model, model-service, flow, flow-deployment,
//     training-package, training-job, notebook). Unlike MXE, every kind is
//     access-controlled, not only models and model services.
//   - Targets are grouped by domain: dot-separated, DNS-style names such as
//     com.ericsson.internal (see ValidateDomain). A model's domain is encoded
//     in its id (SplitModelID); other kinds carry a separate domain field. A
//     target without a domain is reachable only through grants on the
//     Wildcard domain "*", and "*" reaches nothing else.
//   - Privileges are ordered None < Infer < Read < All; a higher privilege
//     implies every lower one.
//   - A Grant gives a subject (user, group or service account) a privilege on
//     a domain and all of its subdomains. A grant on a subdomain cannot
//     restrict what a parent gives; CheckNewGrant refuses grants that would
//     try (ErrRedundant).
//   - The effective privilege of a requester on a domain is the highest
//     privilege over the grants to the requester itself and to its groups,
//     on the domain and on each of its ancestors.
//   - Default deny: no matching grant, no access. Admin is a global role
//     carried by the Requester, not a grant.
//
// Decide is the hot path: it allocates nothing and looks grants up in a map
// keyed by (subject kind, subject id, domain), walking the ancestors of the
// target's domain by slicing the string. A second map gives each subject a
// bit mask of the depths at which it holds grants, so a subject without
// grants costs one lookup and levels without grants cost none.
package access
