package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Subject is who a grant is given to.
type Subject struct {
	Kind SubjectKind
	ID   string
}

// Grant gives Subject Privilege on Domain and all its subdomains. Domain is
// a domain name or Wildcard.
type Grant struct {
	ID        string
	Subject   Subject
	Domain    string // a domain name or "*"
	Privilege Privilege
}

// Target is what a request acts on. Only Kind and Domain take part in the
// decision (privileges are tied to domains, not to single targets); ID is
// carried for the caller's convenience.
type Target struct {
	Kind   Kind
	Domain string // "" for a target without a domain
	ID     string
}

// Requester is the authenticated subject making a request. The HTTP layer
// converts its principal into one. Kind must be User or ServiceAccount and
// ID non-empty; any other requester is denied (unless Admin).
type Requester struct {
	ID     string
	Kind   SubjectKind
	Groups []string
	Admin  bool
}

func (r Requester) valid() bool {
	return (r.Kind == User || r.Kind == ServiceAccount) && r.ID != ""
}

// Decision is the answer to a Decide call.
type Decision struct {
	Allowed bool
	// Effective is the requester's privilege on the target's domain: All
	// for admins, None for invalid questions.
	Effective Privilege
	// Grant is the grant that allowed the request, nil when denied or when
	// the requester is an admin. Among the matching grants it is the one
	// with the highest privilege; ties go to the nearest domain, then to
	// the requester's own grant, then to its groups in the order of
	// Requester.Groups. It points into the Policy and must not be
	// modified.
	Grant *Grant
	// Admin reports that the request was allowed because the requester is
	// an admin.
	Admin bool
	// Reason is a short explanation for people (never parsed).
	Reason string
}

// Reasons. Static strings so Decide does not allocate.
const (
	ReasonAdmin            = "admin"
	reasonBadWant          = "invalid request: the privilege asked for must be infer, read or all"
	reasonBadKind          = "invalid request: unknown target kind"
	reasonBadDomain        = "invalid request: the target's domain is not a valid domain name"
	reasonBadRequester     = "invalid requester: it must be a user or service account with an id"
	reasonNoGrant          = "denied: no grant on the target's domain or its parents (default deny)"
	reasonNoWildcard       = `denied: no grant on "*" (the target has no domain, so only "*" reaches it)`
	reasonInsufficientBase = "denied: the grants give only "
)

var (
	reasonAllowed = [...]string{
		Infer: "allowed: a grant gives infer",
		Read:  "allowed: a grant gives read",
		All:   "allowed: a grant gives all",
	}
	reasonInsufficient = [...]string{
		Infer: reasonInsufficientBase + "infer",
		Read:  reasonInsufficientBase + "read",
		All:   reasonInsufficientBase + "all",
	}
)

type grantKey struct {
	kind   SubjectKind
	id     string
	domain string
}

func keyOf(g *Grant) grantKey { return grantKey{g.Subject.Kind, g.Subject.ID, g.Domain} }

// Policy is an immutable index of grants, safe for concurrent use. The
// zero value and a nil *Policy hold no grants.
type Policy struct {
	grants []Grant
	index  map[grantKey]*Grant
	// depths has, for each subject with grants, bit k set when it has a
	// grant on a domain of k labels (bit 0: on Wildcard).
	depths map[Subject]uint16
}

var emptyPolicy Policy

// maxErrors bounds how many problems NewPolicy reports.
const maxErrors = 10

// NewPolicy builds a policy from grants (which it copies). It refuses
// (rather than skips) invalid grants, wrapping ErrInvalid, and two grants
// to the same subject on the same domain, wrapping ErrDuplicate: either
// means the grant store is corrupt, and silently dropping a grant would
// make decisions nobody can explain. All problems are reported at once (up
// to a bound). Grants made redundant by a later grant on a parent domain
// are accepted: they stay harmless, since effective privilege is a
// maximum.
func NewPolicy(grants []Grant) (*Policy, error) {
	p := &Policy{
		grants: slices.Clone(grants),
		index:  make(map[grantKey]*Grant, len(grants)),
		depths: make(map[Subject]uint16),
	}
	var errs []error
	bad := 0
	for i := range p.grants {
		g := &p.grants[i]
		err := validateGrant(g)
		if err != nil {
			err = fmt.Errorf("grant %s: %w", quote(g.ID), err)
		} else if prev, ok := p.index[keyOf(g)]; ok {
			err = &ConflictError{Err: ErrDuplicate, New: *g, Existing: *prev}
			err = fmt.Errorf("grant %s: %w", quote(g.ID), err)
		} else {
			p.index[keyOf(g)] = g
			p.depths[g.Subject] |= 1 << depthOf(g.Domain)
			continue
		}
		if bad++; bad <= maxErrors {
			errs = append(errs, err)
		}
	}
	if bad > maxErrors {
		errs = append(errs, fmt.Errorf("and %d more bad grants", bad-maxErrors))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("build access policy: %w", errors.Join(errs...))
	}
	return p, nil
}

// Grants returns a copy of the policy's grants, in the order given to
// NewPolicy.
func (p *Policy) Grants() []Grant {
	if p == nil {
		return nil
	}
	return slices.Clone(p.grants)
}

// depthOf returns the number of labels of a valid domain name, 0 for
// Wildcard.
func depthOf(domain string) int {
	if domain == Wildcard {
		return 0
	}
	return strings.Count(domain, ".") + 1
}

// validateGrant reports every problem with g, each wrapping ErrInvalid.
func validateGrant(g *Grant) error {
	var errs []error
	if !g.Subject.Kind.Valid() {
		errs = append(errs, fmt.Errorf(`%w: subject kind %s is not "user", "group" or "service-account"`,
			ErrInvalid, quote(string(g.Subject.Kind))))
	}
	if g.Subject.ID == "" {
		errs = append(errs, fmt.Errorf("%w: the subject id is empty", ErrInvalid))
	}
	switch g.Domain {
	case Wildcard:
	case "":
		errs = append(errs, fmt.Errorf(`%w: the domain is empty; grants on targets without a domain use "*"`, ErrInvalid))
	default:
		if err := ValidateDomain(g.Domain); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case g.Privilege == None:
		errs = append(errs, fmt.Errorf("%w: privilege none grants nothing; revoke the grant instead", ErrInvalid))
	case g.Privilege > All:
		errs = append(errs, fmt.Errorf(`%w: unknown privilege %s; grants give "infer", "read" or "all"`, ErrInvalid, g.Privilege))
	}
	return errors.Join(errs...)
}

// Decide answers whether r may act on t with privilege want.
//
// The question is checked first: want must be Infer, Read or All, t.Kind a
// known kind, and t.Domain "" or a valid domain name; otherwise the answer
// is a denial, for admins too (such a question is a bug in the caller, and
// nothing exists there to allow). Then admins are allowed. Otherwise the
// requester itself (a user or service account) and each of its groups are
// the subjects; a target without a domain is matched only by their grants
// on Wildcard, a target in a domain by their grants on that domain and
// every ancestor, never on Wildcard. Effective is the highest privilege
// over the matches and the request is allowed when it is at least want.
// No match means no access.
//
// Decide does not allocate.
func (p *Policy) Decide(r Requester, t Target, want Privilege) Decision {
	switch {
	case want < Infer || want > All:
		return Decision{Reason: reasonBadWant}
	case !t.Kind.Valid():
		return Decision{Reason: reasonBadKind}
	case t.Domain != "" && !validDomain(t.Domain):
		return Decision{Reason: reasonBadDomain}
	case r.Admin:
		return Decision{Allowed: true, Effective: All, Admin: true, Reason: ReasonAdmin}
	case !r.valid():
		return Decision{Reason: reasonBadRequester}
	}
	domain := t.Domain
	if domain == "" {
		domain = Wildcard
	}
	eff, g := p.effective(r, domain)
	switch {
	case eff >= want:
		return Decision{Allowed: true, Effective: eff, Grant: g, Reason: reasonAllowed[eff]}
	case eff > None:
		return Decision{Effective: eff, Reason: reasonInsufficient[eff]}
	case t.Domain == "":
		return Decision{Reason: reasonNoWildcard}
	default:
		return Decision{Reason: reasonNoGrant}
	}
}

// Effective returns r's privilege on domain from its own and its groups'
// grants on domain and its ancestors, and the grant that gives it (chosen
// as for Decision.Grant; nil for None). Both "" and Wildcard mean the
// targets without a domain, reached only by grants on Wildcard. It ignores
// r.Admin, and returns None for an invalid requester or domain.
func (p *Policy) Effective(r Requester, domain string) (Privilege, *Grant) {
	if !r.valid() {
		return None, nil
	}
	switch {
	case domain == "":
		domain = Wildcard
	case domain != Wildcard && !validDomain(domain):
		return None, nil
	}
	return p.effective(r, domain)
}

// effective finds the best grant for r on domain (Wildcard or a valid
// name): the highest privilege, ties going to the nearer domain and then to
// the earlier subject (the requester, then its groups in order). Each
// subject's depth mask says at which depths it has grants at all, so most
// subjects cost one map lookup and most levels none.
func (p *Policy) effective(r Requester, domain string) (Privilege, *Grant) {
	if p == nil || len(p.index) == 0 {
		return None, nil
	}
	depth, levels := depthOf(domain), uint16(1) // Wildcard: depth 0 only
	if depth > 0 {
		levels = (1<<(depth+1) - 1) &^ 1 // depths 1..depth, never "*"
	}
	best := p.walk(nil, Subject{r.Kind, r.ID}, domain, depth, levels)
	for _, group := range r.Groups {
		if best != nil && best.Privilege == All && len(best.Domain) == len(domain) {
			break // nothing can beat all on the domain itself
		}
		best = p.walk(best, Subject{Group, group}, domain, depth, levels)
	}
	if best == nil {
		return None, nil
	}
	return best.Privilege, best
}

// walk looks up s's grants on domain (which has depth labels) and its
// ancestors, at the depths in levels where s has any, and returns the
// better of best and what it finds. All candidates are domain or its
// ancestors, so a longer domain is a nearer one.
func (p *Policy) walk(best *Grant, s Subject, domain string, depth int, levels uint16) *Grant {
	mask := p.depths[s] & levels
	for d, k := domain, depth; mask != 0; k-- {
		if bit := uint16(1) << k; mask&bit != 0 {
			mask &^= bit
			g := p.index[grantKey{s.Kind, s.ID, d}]
			if g != nil && (best == nil || g.Privilege > best.Privilege ||
				g.Privilege == best.Privilege && len(g.Domain) > len(best.Domain)) {
				best = g
			}
		}
		i := strings.LastIndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[:i]
	}
	return best
}

// CheckNewGrant reports whether g may be added to the policy's grants. It
// returns an error wrapping
//
//   - ErrInvalid if g is malformed: subject kind not user, group or
//     service-account, empty subject id, domain neither a valid name nor
//     Wildcard, privilege not Infer, Read or All;
//   - ErrDuplicate (as a *ConflictError) if the subject already has a grant
//     on exactly g.Domain, whatever its privilege: revoke it first;
//   - ErrRedundant (as a *ConflictError naming the parent grant) if a grant
//     to the same subject on an ancestor of g.Domain already gives at least
//     g.Privilege. MXE: "if all access rights are defined for domain
//     com.ericsson then it is not valid to set read for
//     com.ericsson.internal". Grants to the subject's groups do not count:
//     memberships change.
//
// A grant that raises the privilege a parent gives (read on com.ericsson,
// all on com.ericsson.internal) is fine. Authority to grant is MayGrant's
// concern, not this method's.
func (p *Policy) CheckNewGrant(g Grant) error {
	if p == nil {
		p = &emptyPolicy
	}
	if err := validateGrant(&g); err != nil {
		return fmt.Errorf("invalid grant: %w", err)
	}
	if prev := p.index[keyOf(&g)]; prev != nil {
		return &ConflictError{Err: ErrDuplicate, New: g, Existing: *prev}
	}
	for d, ok := Parent(g.Domain); ok; d, ok = Parent(d) {
		if prev := p.index[grantKey{g.Subject.Kind, g.Subject.ID, d}]; prev != nil && prev.Privilege >= g.Privilege {
			return &ConflictError{Err: ErrRedundant, New: g, Existing: *prev}
		}
	}
	return nil
}

// MayGrant reports whether granter may create g (or, equally, revoke it).
// Admins may grant anything. Anyone else needs All on g.Domain through its
// own or its groups' grants on the domain or an ancestor; on Wildcard only a
// grant on Wildcard counts. A granter never gives more than it holds (since
// All is the top privilege, holding All suffices). The error wraps
// ErrForbidden, or ErrInvalid when g.Domain is neither a domain name nor
// Wildcard. It does not validate the rest of g: CheckNewGrant does.
func (p *Policy) MayGrant(granter Requester, g Grant) error {
	if granter.Admin {
		return nil
	}
	if g.Domain != Wildcard {
		if err := ValidateDomain(g.Domain); err != nil {
			return fmt.Errorf("grant on %s: %w", quote(g.Domain), err)
		}
	}
	held, _ := p.Effective(granter, g.Domain)
	if held < All {
		return fmt.Errorf("%w: a grant on %s needs all on that domain or a parent domain, and you hold %s there",
			ErrForbidden, quote(g.Domain), held)
	}
	if g.Privilege > held {
		return fmt.Errorf("%w: %s is more than the %s you hold on %s", ErrForbidden, g.Privilege, held, quote(g.Domain))
	}
	return nil
}
