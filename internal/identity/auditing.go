package identity

import (
	"strings"

	"github.com/rampart-ml/rampart/internal/audit"
)

// Audit target kinds of the subjects identity manages.
const (
	TargetAccount        = "account"
	TargetServiceAccount = "service-account"
)

// TargetKind is the audit target kind of subject id: a service account or
// a user account, told apart by the id's prefix.
func TargetKind(id string) string {
	if strings.HasPrefix(id, ServiceAccountIDPrefix) {
		return TargetServiceAccount
	}
	return TargetAccount
}

// AuditActor names subject id as the actor of an audit record, for
// actions taken on a subject's behalf outside an authenticated request
// (token requests, logins); the recorder writes it as a pseudonym.
func AuditActor(id string) *audit.Actor {
	if strings.HasPrefix(id, ServiceAccountIDPrefix) {
		return &audit.Actor{ID: id, Kind: audit.ActorServiceAccount}
	}
	return &audit.Actor{ID: id, Kind: audit.ActorUser}
}
