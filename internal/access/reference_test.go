package access

import (
	"regexp"
	"strings"
)

// This file is the reference implementation: the rules read as literally as
// possible, with no index, as a plain loop over every grant. It is the
// oracle for Policy (property tests here) and for the OPA differential test
// in bench/. It shares no code with the implementation it checks except the
// types and constants.

// refLabel and refDomain restate the domain-name rules as a regular
// expression: labels of [a-z0-9-], 1 to 63 bytes, not starting or ending
// with '-', 1 to 10 of them; refValidDomain adds the 253-byte limit.
const refLabel = `[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?`

var (
	refDomainRE    = regexp.MustCompile(`^` + refLabel + `(?:\.` + refLabel + `){0,9}$`)
	refModelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

func refValidDomain(s string) bool { return len(s) <= 253 && refDomainRE.MatchString(s) }

// refSplitModelID: the domain is what precedes the last dot.
func refSplitModelID(id string) (domain, name string, ok bool) {
	if i := strings.LastIndex(id, "."); i >= 0 {
		domain, name = id[:i], id[i+1:]
		return domain, name, refValidDomain(domain) && refModelNameRE.MatchString(name)
	}
	return "", id, refModelNameRE.MatchString(id)
}

func refKnownKind(k Kind) bool {
	for _, known := range []Kind{"model", "model-service", "flow", "flow-deployment", "training-package", "training-job", "notebook"} {
		if k == known {
			return true
		}
	}
	return false
}

// refCovers: does a grant on grantDomain reach a target in targetDomain
// ("" = no domain)? Domainless targets only through "*"; named domains
// through the domain itself and its ancestors, never through "*".
func refCovers(grantDomain, targetDomain string) bool {
	if targetDomain == "" {
		return grantDomain == "*"
	}
	return grantDomain != "*" && (targetDomain == grantDomain || strings.HasPrefix(targetDomain, grantDomain+"."))
}

// refSubjectRank: 0 if s is the requester itself, 1+i if it is the
// requester's i-th group (first occurrence), ok=false if neither.
func refSubjectRank(r Requester, s Subject) (rank int, ok bool) {
	if s.Kind == r.Kind && s.ID == r.ID {
		return 0, true
	}
	if s.Kind == "group" {
		for i, g := range r.Groups {
			if g == s.ID {
				return 1 + i, true
			}
		}
	}
	return 0, false
}

// refDepth: the number of labels; "*" is shallower than every name.
func refDepth(domain string) int {
	if domain == "*" {
		return 0
	}
	return strings.Count(domain, ".") + 1
}

// refEffective: the best matching grant, by highest privilege, then
// nearest (deepest) domain, then subject rank.
func refEffective(grants []Grant, r Requester, targetDomain string) (Privilege, *Grant) {
	if (r.Kind != "user" && r.Kind != "service-account") || r.ID == "" {
		return None, nil
	}
	var best *Grant
	bestRank := 0
	for i := range grants {
		g := &grants[i]
		rank, ok := refSubjectRank(r, g.Subject)
		if !ok || !refCovers(g.Domain, targetDomain) {
			continue
		}
		better := best == nil ||
			g.Privilege > best.Privilege ||
			g.Privilege == best.Privilege && refDepth(g.Domain) > refDepth(best.Domain) ||
			g.Privilege == best.Privilege && g.Domain == best.Domain && rank < bestRank
		if better {
			best, bestRank = g, rank
		}
	}
	if best == nil {
		return None, nil
	}
	return best.Privilege, best
}

// refDecide is the reference for Policy.Decide (Reason aside).
func refDecide(grants []Grant, r Requester, t Target, want Privilege) Decision {
	if want != Infer && want != Read && want != All {
		return Decision{}
	}
	if !refKnownKind(t.Kind) || (t.Domain != "" && !refValidDomain(t.Domain)) {
		return Decision{}
	}
	if r.Admin {
		return Decision{Allowed: true, Effective: All, Admin: true}
	}
	eff, g := refEffective(grants, r, t.Domain)
	if eff >= want {
		return Decision{Allowed: true, Effective: eff, Grant: g}
	}
	return Decision{Effective: eff}
}

// refCheckNewGrant classifies a new grant as "invalid", "duplicate",
// "redundant" or "" (acceptable).
func refCheckNewGrant(grants []Grant, n Grant) string {
	subjectOK := (n.Subject.Kind == "user" || n.Subject.Kind == "group" || n.Subject.Kind == "service-account") && n.Subject.ID != ""
	domainOK := n.Domain == "*" || refValidDomain(n.Domain)
	if !subjectOK || !domainOK || n.Privilege < Infer || n.Privilege > All {
		return "invalid"
	}
	for _, g := range grants {
		if g.Subject == n.Subject && g.Domain == n.Domain {
			return "duplicate"
		}
	}
	for _, g := range grants {
		if g.Subject == n.Subject && g.Domain != "*" && n.Domain != "*" &&
			strings.HasPrefix(n.Domain, g.Domain+".") && g.Privilege >= n.Privilege {
			return "redundant"
		}
	}
	return ""
}

// refMayGrant: admins anything; others need all on the domain (through
// the same matching as decisions, "*" only through "*").
func refMayGrant(grants []Grant, granter Requester, n Grant) bool {
	if granter.Admin {
		return true
	}
	target := n.Domain
	switch {
	case target == "*":
		target = ""
	case !refValidDomain(target):
		return false
	}
	held, _ := refEffective(grants, granter, target)
	return held == All && n.Privilege <= held
}
