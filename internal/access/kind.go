package access

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is the kind of a target: the sort of resource being accessed.
type Kind string

// The target kinds. All are access-controlled the same way: by the domain
// of the target.
const (
	Model           Kind = "model"
	ModelService    Kind = "model-service"
	Flow            Kind = "flow"
	FlowDeployment  Kind = "flow-deployment"
	TrainingPackage Kind = "training-package"
	TrainingJob     Kind = "training-job"
	Notebook        Kind = "notebook"
)

var kinds = [...]Kind{Model, ModelService, Flow, FlowDeployment, TrainingPackage, TrainingJob, Notebook}

// Kinds returns every target kind, in a new slice.
func Kinds() []Kind { return slices.Clone(kinds[:]) }

// Valid reports whether k is one of the target kinds.
func (k Kind) Valid() bool {
	switch k {
	case Model, ModelService, Flow, FlowDeployment, TrainingPackage, TrainingJob, Notebook:
		return true
	}
	return false
}

// ParseKind returns the kind named s (exactly, e.g. "model-service").
func ParseKind(s string) (Kind, error) {
	if k := Kind(s); k.Valid() {
		return k, nil
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("%w: unknown target kind %s; the kinds are %s", ErrInvalid, quote(s), strings.Join(names, ", "))
}

// SubjectKind is the kind of subject a grant is given to.
type SubjectKind string

// Subject kinds. A Requester is a User or a ServiceAccount; a Group is only
// ever a subject through a requester's group memberships.
const (
	User           SubjectKind = "user"
	Group          SubjectKind = "group"
	ServiceAccount SubjectKind = "service-account"
)

// Valid reports whether k is one of the subject kinds.
func (k SubjectKind) Valid() bool {
	return k == User || k == Group || k == ServiceAccount
}
