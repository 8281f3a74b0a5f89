package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The sentences of the MXE guide, section "MXE Access Control,
// Authentication, and Authorization", that define behaviour, and the
// sentences of issue 5 that extend them where MXE is silent, each as test
// cases. Every case quotes its sentence.

const (
	sentAuthn = "MXE GUI, API endpoints, and model services are only accessible after authentication."
	sentKinds = "MXE has target based access control. Targets are defined as resources available in MXE: " +
		"models, model services, flow deployments, training packages, training jobs, and notebooks."
	sentOnlyModels = "Access control currently is only available for models and model services, all other targets " +
		"are accessible by all users with the highest level of privilege. [Rampart deliberately differs: " +
		"issue 5 \"enforces domains for every target kind, denies by default\".]"
	sentRead   = "READ: target is visible for the user and can query all available details of such target"
	sentAll    = "ALL: target can be read, created, modified, deleted by the user"
	sentInfer  = "issue 5: infer (call a model service / run a flow deployment) < read (… implies infer) < all (… implies read)"
	sentDomain = "Access privileges are not directly tied to targets. Instead all targets are grouped by domain " +
		"names and privilege levels are tied to these domains."
	sentSubdomains = "Privileges defined for a domain are applied for all of its subdomains (for example read access " +
		"rights for domain com.ericsson is also valid for com.ericsson.internal)."
	sentNoRestrict = "Privileges defined for a subdomain cannot restrict the privilege inherited from its parent (for " +
		"example if all access rights are defined for domain com.ericsson then it is not valid to set read for " +
		"com.ericsson.internal)."
	sentModelID  = "For models the domain information is encoded in the id field. Model services have a separate field for the domain."
	sentOptional = "Defining a domain for either models or model services is optional, in which case they are only " +
		"accessible with the special wildcard * domain."
	sentNoDot     = "Do not use a dot character in the id to have models without domains (for example mymodel)."
	sentEffective = "issue 5: Effective privilege = highest over the matching grants on the domain and its ancestors, " +
		"for the subject and its groups."
	sentDeny    = "issue 5: Default deny. No grant → no access."
	sentAdmin   = "issue 5: Admin is a separate global role, not a grant."
	sentGranter = "issue 5: Who may grant: admins everywhere; a subject with all on a domain may grant up to all on " +
		"it and its subdomains, never more than it holds"
)

var (
	alice    = Requester{ID: "alice", Kind: User}
	bob      = Requester{ID: "bob", Kind: User}
	robot    = Requester{ID: "robot", Kind: ServiceAccount}
	aliceDev = Requester{ID: "alice", Kind: User, Groups: []string{"dev", "ops"}}
	admin    = Requester{ID: "root", Kind: User, Admin: true}
)

func grant(id string, kind SubjectKind, subject, domain string, p Privilege) Grant {
	return Grant{ID: id, Subject: Subject{kind, subject}, Domain: domain, Privilege: p}
}

type decisionCase struct {
	name      string
	sentence  string
	grants    []Grant
	requester Requester
	target    Target
	want      Privilege
	allowed   bool
	effective Privilege
	grantID   string // the deciding grant, "" for none
	admin     bool
}

func mxeDecisionCases() []decisionCase {
	readEricsson := []Grant{grant("r", User, "alice", "com.ericsson", Read)}
	cases := []decisionCase{
		{name: "unauthenticated zero requester is denied", sentence: sentAuthn,
			grants: []Grant{grant("w", User, "alice", Wildcard, All)}, requester: Requester{},
			target: Target{Kind: Model}, want: Infer},
		{name: "requester kind group is not a requester", sentence: sentAuthn,
			grants: []Grant{grant("w", Group, "alice", Wildcard, All)}, requester: Requester{ID: "alice", Kind: Group},
			target: Target{Kind: Model}, want: Infer},

		{name: "read allows read", sentence: sentRead, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson"}, want: Read, allowed: true, effective: Read, grantID: "r"},
		{name: "read allows infer", sentence: sentRead, grants: readEricsson, requester: alice,
			target: Target{Kind: ModelService, Domain: "com.ericsson"}, want: Infer, allowed: true, effective: Read, grantID: "r"},
		{name: "read does not allow modify", sentence: sentRead, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson"}, want: All, effective: Read},

		{name: "all allows create modify delete", sentence: sentAll, grants: []Grant{grant("a", User, "alice", "com.ericsson", All)},
			requester: alice, target: Target{Kind: Model, Domain: "com.ericsson"}, want: All, allowed: true, effective: All, grantID: "a"},
		{name: "all allows read", sentence: sentAll, grants: []Grant{grant("a", User, "alice", "com.ericsson", All)},
			requester: alice, target: Target{Kind: Model, Domain: "com.ericsson"}, want: Read, allowed: true, effective: All, grantID: "a"},
		{name: "all allows infer", sentence: sentAll, grants: []Grant{grant("a", User, "alice", "com.ericsson", All)},
			requester: alice, target: Target{Kind: ModelService, Domain: "com.ericsson"}, want: Infer, allowed: true, effective: All, grantID: "a"},

		{name: "infer allows infer", sentence: sentInfer, grants: []Grant{grant("i", ServiceAccount, "robot", "com.ericsson", Infer)},
			requester: robot, target: Target{Kind: ModelService, Domain: "com.ericsson"}, want: Infer, allowed: true, effective: Infer, grantID: "i"},
		{name: "infer does not allow read", sentence: sentInfer, grants: []Grant{grant("i", ServiceAccount, "robot", "com.ericsson", Infer)},
			requester: robot, target: Target{Kind: ModelService, Domain: "com.ericsson"}, want: Read, effective: Infer},
		{name: "infer does not allow all", sentence: sentInfer, grants: []Grant{grant("i", ServiceAccount, "robot", "com.ericsson", Infer)},
			requester: robot, target: Target{Kind: FlowDeployment, Domain: "com.ericsson"}, want: All, effective: Infer},

		{name: "same domain, different target ids, same decision (m1)", sentence: sentDomain, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson", ID: "com.ericsson.m1"}, want: Read, allowed: true, effective: Read, grantID: "r"},
		{name: "same domain, different target ids, same decision (m2)", sentence: sentDomain, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson", ID: "com.ericsson.m2"}, want: Read, allowed: true, effective: Read, grantID: "r"},
		{name: "the target id does not matter, its domain does", sentence: sentDomain, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.nokia", ID: "com.ericsson.m1"}, want: Read},

		{name: "com.ericsson reaches com.ericsson.internal", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson.internal"}, want: Read, allowed: true, effective: Read, grantID: "r"},
		{name: "and every deeper subdomain", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Notebook, Domain: "com.ericsson.internal.a.b.c"}, want: Read, allowed: true, effective: Read, grantID: "r"},
		{name: "but not the parent", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com"}, want: Infer},
		{name: "nor a sibling", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.nokia"}, want: Infer},
		{name: "nor a look-alike prefix", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericssonx"}, want: Infer},
		{name: "nor a domain that ends the same", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model, Domain: "org.com.ericsson"}, want: Infer},
		{name: "nor the domainless targets", sentence: sentSubdomains, grants: readEricsson, requester: alice,
			target: Target{Kind: Model}, want: Infer},

		{name: "a lower subdomain grant does not restrict the parent's all", sentence: sentNoRestrict,
			grants:    []Grant{grant("sub", User, "alice", "com.ericsson.internal", Read), grant("parent", User, "alice", "com.ericsson", All)},
			requester: alice, target: Target{Kind: Model, Domain: "com.ericsson.internal"}, want: All, allowed: true, effective: All, grantID: "parent"},
		{name: "a higher subdomain grant raises it", sentence: sentNoRestrict,
			grants:    []Grant{grant("sub", User, "alice", "com.ericsson.internal", All), grant("parent", User, "alice", "com.ericsson", Read)},
			requester: alice, target: Target{Kind: Model, Domain: "com.ericsson.internal.x"}, want: All, allowed: true, effective: All, grantID: "sub"},
		{name: "only below the subdomain", sentence: sentNoRestrict,
			grants:    []Grant{grant("sub", User, "alice", "com.ericsson.internal", All), grant("parent", User, "alice", "com.ericsson", Read)},
			requester: alice, target: Target{Kind: Model, Domain: "com.ericsson.external"}, want: All, effective: Read},

		{name: "a model service's domain is its domain field, not its id", sentence: sentModelID, grants: readEricsson, requester: alice,
			target: Target{Kind: ModelService, Domain: "com.nokia", ID: "com.ericsson.svc"}, want: Infer},
		{name: "a model service in the granted domain", sentence: sentModelID, grants: readEricsson, requester: alice,
			target: Target{Kind: ModelService, Domain: "com.ericsson", ID: "svc"}, want: Infer, allowed: true, effective: Read, grantID: "r"},

		{name: "a domainless model is reachable through *", sentence: sentOptional,
			grants: []Grant{grant("w", User, "alice", Wildcard, Read)}, requester: alice,
			target: Target{Kind: Model, ID: "mymodel"}, want: Read, allowed: true, effective: Read, grantID: "w"},
		{name: "a domainless model service is reachable through *", sentence: sentOptional,
			grants: []Grant{grant("w", User, "alice", Wildcard, All)}, requester: alice,
			target: Target{Kind: ModelService, ID: "svc"}, want: All, allowed: true, effective: All, grantID: "w"},
		{name: "only through *: a top-level domain grant does not reach it", sentence: sentOptional,
			grants: []Grant{grant("c", User, "alice", "com", All)}, requester: alice,
			target: Target{Kind: Model, ID: "mymodel"}, want: Infer},
		{name: "* reaches no named domain", sentence: sentOptional,
			grants: []Grant{grant("w", User, "alice", Wildcard, All)}, requester: alice,
			target: Target{Kind: Model, Domain: "com"}, want: Infer},

		{name: "user read and group all: all", sentence: sentEffective,
			grants:    []Grant{grant("u", User, "alice", "com.ericsson", Read), grant("g", Group, "ops", "com", All)},
			requester: aliceDev, target: Target{Kind: TrainingJob, Domain: "com.ericsson.internal"}, want: All, allowed: true, effective: All, grantID: "g"},
		{name: "equal privileges: the nearest domain decides", sentence: sentEffective,
			grants:    []Grant{grant("far", User, "alice", "com", Read), grant("near", Group, "dev", "com.ericsson", Read)},
			requester: aliceDev, target: Target{Kind: Model, Domain: "com.ericsson.internal"}, want: Read, allowed: true, effective: Read, grantID: "near"},
		{name: "equal privileges on one domain: the requester's own grant", sentence: sentEffective,
			grants:    []Grant{grant("grp", Group, "dev", "com", Read), grant("own", User, "alice", "com", Read)},
			requester: aliceDev, target: Target{Kind: Model, Domain: "com.x"}, want: Read, allowed: true, effective: Read, grantID: "own"},
		{name: "a group the requester is not in does not count", sentence: sentEffective,
			grants:    []Grant{grant("g", Group, "finance", "com", All)},
			requester: aliceDev, target: Target{Kind: Model, Domain: "com"}, want: Infer},
		{name: "a user grant does not reach a service account with the same id", sentence: sentEffective,
			grants:    []Grant{grant("u", User, "robot", "com", All)},
			requester: robot, target: Target{Kind: Model, Domain: "com"}, want: Infer},
		{name: "a group grant does not reach a user named like the group", sentence: sentEffective,
			grants:    []Grant{grant("g", Group, "alice", "com", All)},
			requester: alice, target: Target{Kind: Model, Domain: "com"}, want: Infer},

		{name: "no grants: denied", sentence: sentDeny, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson"}, want: Infer},
		{name: "another user's grant: denied", sentence: sentDeny, grants: readEricsson, requester: bob,
			target: Target{Kind: Model, Domain: "com.ericsson"}, want: Infer},

		{name: "admin without grants is allowed everything", sentence: sentAdmin, requester: admin,
			target: Target{Kind: Notebook, Domain: "com.ericsson"}, want: All, allowed: true, effective: All, admin: true},
		{name: "admin reaches domainless targets", sentence: sentAdmin, requester: admin,
			target: Target{Kind: Model}, want: All, allowed: true, effective: All, admin: true},
		{name: "all on * is not admin", sentence: sentAdmin,
			grants: []Grant{grant("w", User, "alice", Wildcard, All)}, requester: alice,
			target: Target{Kind: Model, Domain: "com.ericsson"}, want: Infer},
	}
	for _, k := range kinds {
		cases = append(cases,
			decisionCase{name: "kind " + string(k) + " is controlled by its domain", sentence: sentKinds,
				grants: readEricsson, requester: alice, target: Target{Kind: k, Domain: "com.ericsson"},
				want: Read, allowed: true, effective: Read, grantID: "r"},
			decisionCase{name: "kind " + string(k) + " is denied by default", sentence: sentOnlyModels,
				requester: alice, target: Target{Kind: k, Domain: "com.ericsson"}, want: Infer},
			decisionCase{name: "kind " + string(k) + " without a domain is denied by default", sentence: sentOnlyModels,
				requester: alice, target: Target{Kind: k}, want: Infer},
		)
	}
	return cases
}

func TestMXEDecisions(t *testing.T) {
	t.Parallel()
	for _, tc := range mxeDecisionCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustPolicy(t, tc.grants)
			got := p.Decide(tc.requester, tc.target, tc.want)
			gotID := ""
			if got.Grant != nil {
				gotID = got.Grant.ID
			}
			type summary struct {
				Allowed, Admin bool
				Effective      Privilege
				GrantID        string
			}
			want := summary{tc.allowed, tc.admin, tc.effective, tc.grantID}
			if d := cmp.Diff(want, summary{got.Allowed, got.Admin, got.Effective, gotID}); d != "" {
				t.Errorf("%s\nDecide(%+v, %+v, %v) = %+v; -want +got:\n%s", tc.sentence, tc.requester, tc.target, tc.want, got, d)
			}
			if ref := refDecide(tc.grants, tc.requester, tc.target, tc.want); !cmp.Equal(ref, got, decisionsOnly) {
				t.Errorf("%s\nreference disagrees: %+v", tc.sentence, ref)
			}
		})
	}
}

func TestMXEModelIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sentence, id, domain, name string
		grants                     []Grant
		allowed                    bool
	}{
		{sentModelID, "com.ericsson.mymodel", "com.ericsson", "mymodel",
			[]Grant{grant("r", User, "alice", "com.ericsson", Read)}, true},
		{sentModelID, "com.ericsson.internal.mymodel", "com.ericsson.internal", "mymodel",
			[]Grant{grant("r", User, "alice", "com.ericsson", Read)}, true},
		{sentModelID, "com.nokia.mymodel", "com.nokia", "mymodel",
			[]Grant{grant("r", User, "alice", "com.ericsson", Read)}, false},
		{sentNoDot, "mymodel", "", "mymodel", []Grant{grant("r", User, "alice", "com.ericsson", Read)}, false},
		{sentNoDot, "mymodel", "", "mymodel", []Grant{grant("w", User, "alice", Wildcard, Read)}, true},
		{sentNoDot, "com.mymodel", "com", "mymodel", []Grant{grant("w", User, "alice", Wildcard, Read)}, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			domain, name, err := SplitModelID(tc.id)
			if err != nil || domain != tc.domain || name != tc.name {
				t.Fatalf("%s\nSplitModelID(%q) = %q, %q, %v; want %q, %q", tc.sentence, tc.id, domain, name, err, tc.domain, tc.name)
			}
			d := mustPolicy(t, tc.grants).Decide(alice, Target{Kind: Model, Domain: domain, ID: tc.id}, Read)
			if d.Allowed != tc.allowed {
				t.Errorf("%s\nreading model %q with %+v: %+v, want allowed=%v", tc.sentence, tc.id, tc.grants, d, tc.allowed)
			}
		})
	}
}

func TestMXECheckNewGrant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sentence string
		existing       []Grant
		add            Grant
		wantErr        error  // nil, ErrRedundant, ErrDuplicate or ErrInvalid
		names          string // a substring the error must contain
	}{
		{"all on com.ericsson, read on com.ericsson.internal: refused", sentNoRestrict,
			[]Grant{grant("g-parent", User, "alice", "com.ericsson", All)}, grant("new", User, "alice", "com.ericsson.internal", Read),
			ErrRedundant, `already holds all on "com.ericsson.internal" through grant "g-parent" on its parent domain "com.ericsson"`},
		{"equal privilege below a parent: refused too", sentNoRestrict,
			[]Grant{grant("g-parent", User, "alice", "com.ericsson", All)}, grant("new", User, "alice", "com.ericsson.internal", All),
			ErrRedundant, `"g-parent"`},
		{"infer far below read: refused, naming the nearest parent that covers it", sentNoRestrict,
			[]Grant{grant("g-top", User, "alice", "com", All), grant("g-mid", User, "alice", "com.ericsson", Read)},
			grant("new", User, "alice", "com.ericsson.internal.lab", Infer), ErrRedundant, `"g-mid"`},
		{"read on com.ericsson, all on com.ericsson.internal: raises, accepted", sentNoRestrict,
			[]Grant{grant("g-parent", User, "alice", "com.ericsson", Read)}, grant("new", User, "alice", "com.ericsson.internal", All),
			nil, ""},
		{"another subject's parent grant does not count", sentNoRestrict,
			[]Grant{grant("g-parent", User, "bob", "com.ericsson", All)}, grant("new", User, "alice", "com.ericsson.internal", Read),
			nil, ""},
		{"a group's parent grant does not count (memberships change)", sentNoRestrict,
			[]Grant{grant("g-parent", Group, "dev", "com.ericsson", All)}, grant("new", User, "alice", "com.ericsson.internal", Read),
			nil, ""},
		{"a grant on * is nobody's parent", sentNoRestrict,
			[]Grant{grant("g-wild", User, "alice", Wildcard, All)}, grant("new", User, "alice", "com", Read),
			nil, ""},
		{"a lower grant on the parent, added after the child, is fine", sentNoRestrict,
			[]Grant{grant("g-child", User, "alice", "com.ericsson.internal", All)}, grant("new", User, "alice", "com.ericsson", Read),
			nil, ""},
		{"the same subject and domain again: duplicate", sentNoRestrict,
			[]Grant{grant("g-old", User, "alice", "com.ericsson", Read)}, grant("new", User, "alice", "com.ericsson", All),
			ErrDuplicate, `"g-old"`},
		{"the same on *: duplicate", sentOptional,
			[]Grant{grant("g-old", Group, "dev", Wildcard, Read)}, grant("new", Group, "dev", Wildcard, Read),
			ErrDuplicate, `"g-old"`},
		{"a grant of none: invalid", sentDeny, nil, grant("new", User, "alice", "com", None), ErrInvalid, "none"},
		{"a domainless grant must say *", sentOptional, nil, grant("new", User, "alice", "", Read), ErrInvalid, `"*"`},
		{"grants go to users, groups and service accounts", sentGranter, nil, grant("new", "role", "x", "com", Read), ErrInvalid, `"role"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := mustPolicy(t, tc.existing).CheckNewGrant(tc.add)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("%s\nCheckNewGrant(%+v) = %v, want nil", tc.sentence, tc.add, err)
			case tc.wantErr == nil:
				return
			case !errors.Is(err, tc.wantErr):
				t.Fatalf("%s\nCheckNewGrant(%+v) = %v, want %v", tc.sentence, tc.add, err, tc.wantErr)
			case !strings.Contains(err.Error(), tc.names):
				t.Errorf("%s\nCheckNewGrant(%+v) = %q, want it to contain %q", tc.sentence, tc.add, err, tc.names)
			}
			var ce *ConflictError
			if errors.As(err, &ce) && (ce.New != tc.add || !slices.Contains(tc.existing, ce.Existing)) {
				t.Errorf("ConflictError{New: %+v, Existing: %+v}: want New %+v and Existing among %+v", ce.New, ce.Existing, tc.add, tc.existing)
			}
		})
	}
}

func TestMXEMayGrant(t *testing.T) {
	t.Parallel()
	grants := []Grant{
		grant("own", User, "alice", "com.ericsson", All),
		grant("grp", Group, "ops", "org.acme", All),
		grant("rd", User, "alice", "com.nokia", Read),
		grant("w", User, "carol", Wildcard, All),
	}
	carol := Requester{ID: "carol", Kind: User}
	for _, tc := range []struct {
		name    string
		granter Requester
		add     Grant
		wantErr error
	}{
		{"admin grants anywhere", admin, grant("n", User, "bob", "net.x", All), nil},
		{"admin grants on *", admin, grant("n", User, "bob", Wildcard, All), nil},
		{"all on a domain: grant all on it", alice, grant("n", User, "bob", "com.ericsson", All), nil},
		{"all on a domain: grant read on a subdomain", alice, grant("n", Group, "dev", "com.ericsson.internal", Read), nil},
		{"all through a group", aliceDev, grant("n", User, "bob", "org.acme.lab", Infer), nil},
		{"read is not enough", alice, grant("n", User, "bob", "com.nokia", Infer), ErrForbidden},
		{"not on the parent", alice, grant("n", User, "bob", "com", Read), ErrForbidden},
		{"not on a sibling", alice, grant("n", User, "bob", "com.ericssonx", Read), ErrForbidden},
		{"not on * through a named domain", alice, grant("n", User, "bob", Wildcard, Read), ErrForbidden},
		{"all on * grants on *", carol, grant("n", User, "bob", Wildcard, Read), nil},
		{"all on * does not grant on named domains", carol, grant("n", User, "bob", "com", Read), ErrForbidden},
		{"no grants, no granting", bob, grant("n", User, "bob", "com.ericsson", Infer), ErrForbidden},
		{"never more than it holds", alice, grant("n", User, "bob", "com.ericsson", Privilege(9)), ErrForbidden},
		{"an invalid domain", alice, grant("n", User, "bob", "com..ericsson", Read), ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := mustPolicy(t, grants).MayGrant(tc.granter, tc.add)
			if (tc.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("%s\nMayGrant(%+v, %+v) = %v, want %v", sentGranter, tc.granter, tc.add, err, tc.wantErr)
			}
			if want := refMayGrant(grants, tc.granter, tc.add); want != (err == nil) {
				t.Errorf("reference says %v", want)
			}
		})
	}
}

func TestKindsAreTheMXETargets(t *testing.T) {
	t.Parallel()
	// sentKinds lists models, model services, flow deployments, training
	// packages, training jobs and notebooks; issue 5 adds flows.
	want := []Kind{"model", "model-service", "flow", "flow-deployment", "training-package", "training-job", "notebook"}
	if d := cmp.Diff(want, Kinds()); d != "" {
		t.Errorf("%s\nKinds(): -want +got:\n%s", sentKinds, d)
	}
	for _, k := range want {
		if got, err := ParseKind(string(k)); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Model", "models", "model_service", "*"} {
		if _, err := ParseKind(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseKind(%q) = %v, want ErrInvalid", s, err)
		}
	}
	Kinds()[0] = "mutated"
	if Kinds()[0] != Model {
		t.Error("Kinds() exposes its backing array")
	}
}

func TestPrivilegeOrder(t *testing.T) {
	t.Parallel()
	// sentInfer: infer < read < all; None below everything.
	if !(None < Infer && Infer < Read && Read < All) {
		t.Fatalf("%s: order is %d %d %d %d", sentInfer, None, Infer, Read, All)
	}
	for _, p := range []Privilege{None, Infer, Read, All} {
		got, err := ParsePrivilege(p.String())
		if got != p || err != nil {
			t.Errorf("ParsePrivilege(%q) = %v, %v", p.String(), got, err)
		}
	}
	for _, s := range []string{"", "READ", "write", "privilege(4)"} {
		if _, err := ParsePrivilege(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePrivilege(%q) = %v, want ErrInvalid", s, err)
		}
	}
	if got := Privilege(4).String(); got != "privilege(4)" {
		t.Errorf("Privilege(4).String() = %q", got)
	}
	_ = fmt.Sprint(None) // Stringer
}
