package authz

// The audit records of access control: domain and grant changes (written
// in the transaction that makes them), refused grant changes, and the
// denials of Require. Grantees are users, groups and service accounts, so
// a record names only their kind, never their id or name: the grant's id
// links to them for whoever may read the grants.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rampart-ml/rampart/internal/access"
	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/principal"
	"github.com/rampart-ml/rampart/internal/store"
)

// Audit actions of this package.
const (
	actionDomainCreate = "domain.create"
	actionDomainDelete = "domain.delete"
	actionGrantCreate  = "grant.create"
	actionGrantRevoke  = "grant.revoke"
	actionAccessDeny   = "access.deny"
)

// errNoRecorder is what every change and denial fails with when the
// Service has no Recorder: nothing may happen unrecorded, so a missing
// recorder refuses (503) rather than lets things pass.
var errNoRecorder = fmt.Errorf("authz: no audit recorder configured: %w", audit.ErrWrite)

// record appends e in tx, the transaction of the change it describes.
func (s *Service) record(ctx context.Context, tx store.Tx, e audit.Entry) error {
	if s.opt.Recorder == nil {
		return errNoRecorder
	}
	return s.opt.Recorder.Record(ctx, tx, e)
}

// write records e in a transaction of its own (a refused change).
func (s *Service) write(ctx context.Context, e audit.Entry) error {
	if s.opt.Recorder == nil {
		return errNoRecorder
	}
	return s.opt.Recorder.Write(ctx, e)
}

// submit records e without waiting for the commit (a denial on a hot path).
func (s *Service) submit(ctx context.Context, e audit.Entry) error {
	if s.opt.Recorder == nil {
		return errNoRecorder
	}
	return s.opt.Recorder.Submit(ctx, e)
}

func domainEntry(action, name string) audit.Entry {
	return audit.Entry{Action: action, Target: audit.Target{Kind: "domain", ID: name}}
}

// grantEntry describes a change to g: the grant by id and domain, the
// grantee by kind only.
func grantEntry(action string, g store.Grant) audit.Entry {
	return audit.Entry{
		Action: action,
		Target: audit.Target{Kind: "grant", Domain: g.Domain, ID: g.ID},
		Reason: grantReason(g.SubjectKind, g.Privilege),
	}
}

// grantRefusal describes a refused grant creation. The grant never
// existed, so it has no id; domain, kind and privilege are the client's
// and are made safe to record.
func grantRefusal(outcome, code, domain, subjectKind, privilege string) audit.Entry {
	return audit.Entry{
		Action:  actionGrantCreate,
		Target:  audit.Target{Kind: "grant", Domain: auditText(domain, maxAuditDomain)},
		Outcome: outcome,
		Reason:  "code=" + code + " " + grantReason(subjectKind, privilege),
	}
}

func grantReason(subjectKind, privilege string) string {
	return "grantee=" + auditText(subjectKind, 64) + " privilege=" + auditText(privilege, 64)
}

// denialEntry is the record of a Require denial: who was refused (p, who
// need not be the principal of ctx), the target, and what was wanted.
func denialEntry(p principal.Principal, t access.Target, want access.Privilege) audit.Entry {
	actor := audit.Actor{ID: p.ID, Kind: audit.ActorUser}
	switch {
	case p.ID == "":
		actor = audit.Actor{ID: audit.ActorAnonymous, Kind: audit.ActorAnonymous}
	case p.Kind == principal.ServiceAccount:
		actor.Kind = audit.ActorServiceAccount
	}
	kind := string(t.Kind)
	if !validKind(kind) {
		// A malformed question is still a denial worth keeping.
		kind = "invalid"
	}
	return audit.Entry{
		Action:  actionAccessDeny,
		Target:  audit.Target{Kind: kind, Domain: auditText(t.Domain, maxAuditDomain), ID: auditText(t.ID, maxAuditTargetID)},
		Outcome: audit.OutcomeDenied,
		Reason:  "privilege=" + want.String(),
		Actor:   &actor,
	}
}

// Limits of audit.Event fields this package fills from request input.
const (
	maxAuditDomain   = 253
	maxAuditTargetID = 256
)

// validKind reports whether k is a well-formed audit target kind (lower
// case letters, digits, '_' and '-', starting with a letter).
func validKind(k string) bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	return strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_-") == ""
}

// auditText returns s when the audit log takes it as it is (short,
// UTF-8, no control or format characters), and otherwise its Go-quoted
// ASCII form cut to limit bytes: a refusal of odd input is still
// recorded, and the record cannot forge a line or hide text.
func auditText(s string, limit int) string {
	if len(s) <= limit && utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	q := strconv.QuoteToASCII(s)
	if len(q) > limit {
		q = q[:limit]
	}
	return q
}

// unsafeRune matches what audit.Event.Validate refuses in text fields.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
