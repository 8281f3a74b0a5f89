package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampart-ml/rampart/internal/store"
)

func domain(name string) store.Domain {
	return store.Domain{Name: name, CreatedBy: "id-admin", CreatedAt: epoch}
}

func grant(id, kind, subject, dom, privilege string) store.Grant {
	return store.Grant{ID: id, SubjectKind: kind, SubjectID: subject, Domain: dom,
		Privilege: privilege, CreatedBy: "id-admin", CreatedAt: epoch.Add(time.Minute)}
}

func createDomains(t *testing.T, s store.Store, ds ...store.Domain) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, d := range ds {
			if err := tx.Domains().CreateDomain(context.Background(), d); err != nil {
				return err
			}
		}
		return nil
	})
}

func createGrants(t *testing.T, s store.Store, gs ...store.Grant) {
	t.Helper()
	inTx(t, s, func(tx store.Tx) error {
		for _, g := range gs {
			if err := tx.Grants().CreateGrant(context.Background(), g); err != nil {
				return err
			}
		}
		return nil
	})
}

func listDomains(t *testing.T, s store.Store) []store.Domain {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.Domain, error) {
		return tx.Domains().ListDomains(context.Background())
	})
}

func listGrants(t *testing.T, s store.Store) []store.Grant {
	t.Helper()
	return must(t, s, func(tx store.Tx) ([]store.Grant, error) {
		return tx.Grants().ListGrants(context.Background())
	})
}

func domainExists(t *testing.T, s store.Store, name string) bool {
	t.Helper()
	return must(t, s, func(tx store.Tx) (bool, error) {
		return tx.Domains().DomainExists(context.Background(), name)
	})
}

func accessVersion(t *testing.T, s store.Store) int64 {
	t.Helper()
	return must(t, s, func(tx store.Tx) (int64, error) {
		return tx.Grants().AccessVersion(context.Background())
	})
}

func testDomains(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got := listDomains(t, s); len(got) != 0 {
		t.Errorf("ListDomains on empty store = %v, want none", got)
	}
	vision, acme, acmeVision := domain("org.vision"), domain("com.acme"), domain("com.acme.vision")
	acmeVision.CreatedBy, acmeVision.CreatedAt = "id-alice", epoch.Add(time.Hour)
	createDomains(t, s, vision, acmeVision, acme)
	if d := cmp.Diff([]store.Domain{acme, acmeVision, vision}, listDomains(t, s), equateTime); d != "" {
		t.Errorf("ListDomains ordered by name (-want +got):\n%s", d)
	}
	for name, want := range map[string]bool{
		"com.acme": true, "com.acme.vision": true, "org.vision": true,
		"com": false, "com.acme.vis": false, "*": false, "": false,
	} {
		if got := domainExists(t, s, name); got != want {
			t.Errorf("DomainExists(%q) = %v, want %v", name, got, want)
		}
	}

	err := try(s, func(tx store.Tx) error { return tx.Domains().CreateDomain(ctx, domain("com.acme")) })
	wantIs(t, "CreateDomain(name taken)", err, store.ErrConflict)
	// "*" is the wildcard of grants, never a domain of its own.
	if err := try(s, func(tx store.Tx) error { return tx.Domains().CreateDomain(ctx, domain("*")) }); err == nil {
		t.Error(`CreateDomain("*") succeeded, want an error`)
	}

	inTx(t, s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") })
	// Subdomains are separate records: deleting a parent leaves them.
	if d := cmp.Diff([]store.Domain{acmeVision, vision}, listDomains(t, s), equateTime); d != "" {
		t.Errorf("after DeleteDomain (-want +got):\n%s", d)
	}
	if domainExists(t, s, "com.acme") {
		t.Error("DomainExists(com.acme) after DeleteDomain = true")
	}
	err = try(s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") })
	wantIs(t, "DeleteDomain(deleted)", err, store.ErrNotFound)
	err = try(s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "*") })
	wantIs(t, `DeleteDomain("*")`, err, store.ErrNotFound)
}

func testDeleteDomainInUse(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomains(t, s, domain("com.acme"), domain("com.acme.vision"))
	g := grant("g1", "user", "id-alice", "com.acme.vision", "read")
	createGrants(t, s, g, grant("g2", "user", "id-alice", "*", "all"))

	err := try(s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme.vision") })
	wantIs(t, "DeleteDomain(named by a grant)", err, store.ErrConflict)
	if !domainExists(t, s, "com.acme.vision") {
		t.Error("DeleteDomain refused with ErrConflict, yet the domain is gone")
	}
	// A grant on a subdomain does not hold its parent, nor "*" any domain.
	inTx(t, s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") })

	inTx(t, s, func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, g.ID) })
	inTx(t, s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme.vision") })
	if got := listDomains(t, s); len(got) != 0 {
		t.Errorf("ListDomains after deleting all = %v, want none", got)
	}
}

func testGrantRoundTrip(t *testing.T, s store.Store) {
	createDomains(t, s, domain("com.acme"))
	for _, want := range []store.Grant{
		grant("g-user", "user", "id-alice", "com.acme", "infer"),
		grant("g-group", "group", "vision-team", "com.acme", "read"),
		grant("g-sa", "service-account", "sa-ci", "com.acme", "all"),
	} {
		createGrants(t, s, want)
		got, err := get(s, func(tx store.Tx) (store.Grant, error) {
			return tx.Grants().GrantByID(context.Background(), want.ID)
		})
		if err != nil {
			t.Fatalf("GrantByID(%q): %v", want.ID, err)
		}
		if d := cmp.Diff(want, got, equateTime); d != "" {
			t.Errorf("GrantByID(%q) (-want +got):\n%s", want.ID, d)
		}
	}
}

// testWildcardGrant checks that "*" needs no domain row and stays apart
// from named domains.
func testWildcardGrant(t *testing.T, s store.Store) {
	ctx := context.Background()
	star := grant("g-star", "user", "id-alice", "*", "all")
	createGrants(t, s, star)
	if d := cmp.Diff([]store.Grant{star}, listGrants(t, s), equateTime); d != "" {
		t.Errorf("ListGrants (-want +got):\n%s", d)
	}
	if got := listDomains(t, s); len(got) != 0 {
		t.Errorf("a \"*\" grant created domains: %v", got)
	}
	if domainExists(t, s, "*") {
		t.Error(`DomainExists("*") = true, want false`)
	}
	dup := grant("g-star2", "user", "id-alice", "*", "read")
	err := try(s, func(tx store.Tx) error { return tx.Grants().CreateGrant(ctx, dup) })
	wantIs(t, `CreateGrant(second "*" grant of a subject)`, err, store.ErrConflict)
}

func testCreateGrantErrors(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomains(t, s, domain("com.acme"))
	g := grant("g1", "user", "id-alice", "com.acme", "read")
	createGrants(t, s, g)
	v := accessVersion(t, s)
	for _, tt := range []struct {
		name string
		g    store.Grant
		want error // nil: any error
	}{
		{"id taken", grant(g.ID, "user", "id-bob", "com.acme", "read"), store.ErrConflict},
		{"subject already has a grant on the domain", grant("g2", "user", "id-alice", "com.acme", "all"), store.ErrConflict},
		{"unknown domain", grant("g2", "user", "id-alice", "com.acme.vision", "read"), store.ErrNotFound},
		{"bad subject kind", grant("g2", "robot", "id-alice", "*", "read"), nil},
		{"empty subject id", grant("g2", "user", "", "*", "read"), nil},
		{"bad privilege", grant("g2", "user", "id-alice", "*", "admin"), nil},
		{"empty domain", grant("g2", "user", "id-alice", "", "read"), nil},
	} {
		err := try(s, func(tx store.Tx) error { return tx.Grants().CreateGrant(ctx, tt.g) })
		if tt.want == nil {
			if err == nil {
				t.Errorf("CreateGrant(%s) succeeded, want an error", tt.name)
			}
			continue
		}
		wantIs(t, "CreateGrant("+tt.name+")", err, tt.want)
	}
	if d := cmp.Diff([]store.Grant{g}, listGrants(t, s), equateTime); d != "" {
		t.Errorf("after failed creates (-want +got):\n%s", d)
	}
	if got := accessVersion(t, s); got != v {
		t.Errorf("AccessVersion after failed creates = %d, want %d", got, v)
	}
}

func testGrantNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	createGrants(t, s, grant("g1", "user", "id-alice", "*", "read"))
	_, err := get(s, func(tx store.Tx) (store.Grant, error) { return tx.Grants().GrantByID(ctx, "nope") })
	wantIs(t, "GrantByID(unknown)", err, store.ErrNotFound)
	err = try(s, func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "nope") })
	wantIs(t, "DeleteGrant(unknown)", err, store.ErrNotFound)

	inTx(t, s, func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "g1") })
	_, err = get(s, func(tx store.Tx) (store.Grant, error) { return tx.Grants().GrantByID(ctx, "g1") })
	wantIs(t, "GrantByID after DeleteGrant", err, store.ErrNotFound)
	err = try(s, func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "g1") })
	wantIs(t, "DeleteGrant twice", err, store.ErrNotFound)
	if got := listGrants(t, s); len(got) != 0 {
		t.Errorf("ListGrants after deleting the only grant = %v, want none", got)
	}
}

func testListGrants(t *testing.T, s store.Store) {
	if got := listGrants(t, s); len(got) != 0 {
		t.Errorf("ListGrants on empty store = %v, want none", got)
	}
	createDomains(t, s, domain("com.acme"), domain("com.acme.vision"), domain("org.other"))
	// In the order ListGrants must return them: by domain ("*" sorts
	// first), then subject kind, then subject id; ids are in reverse so
	// that ordering by id would fail.
	want := []store.Grant{
		grant("g9", "group", "vision-team", "*", "infer"),
		grant("g8", "user", "id-alice", "*", "all"),
		grant("g7", "group", "vision-team", "com.acme", "read"),
		grant("g6", "service-account", "sa-ci", "com.acme", "all"),
		grant("g5", "user", "id-alice", "com.acme", "read"),
		grant("g4", "user", "id-bob", "com.acme", "infer"),
		grant("g3", "user", "id-alice", "com.acme.vision", "all"),
		grant("g2", "group", "id-alice", "org.other", "read"), // same id, other kind
		grant("g1", "user", "id-alice", "org.other", "read"),
	}
	shuffled := []store.Grant{want[4], want[8], want[0], want[6], want[2], want[7], want[1], want[5], want[3]}
	createGrants(t, s, shuffled...)
	if d := cmp.Diff(want, listGrants(t, s), equateTime); d != "" {
		t.Errorf("ListGrants ordered by domain, subject kind, subject id (-want +got):\n%s", d)
	}
}

func testDeleteGrantsOfSubject(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomains(t, s, domain("com.acme"), domain("org.other"))
	alice1 := grant("g1", "user", "id-alice", "com.acme", "read")
	alice2 := grant("g2", "user", "id-alice", "*", "all")
	aliceGroup := grant("g3", "group", "id-alice", "com.acme", "read") // same id, other kind
	bob := grant("g4", "user", "id-bob", "com.acme", "read")
	alice3 := grant("g5", "user", "id-alice", "org.other", "infer")
	createGrants(t, s, alice1, alice2, aliceGroup, bob, alice3)

	deleteOf := func(kind, id string) int {
		t.Helper()
		return must(t, s, func(tx store.Tx) (int, error) {
			return tx.Grants().DeleteGrantsOfSubject(ctx, kind, id)
		})
	}
	if n := deleteOf("user", "id-alice"); n != 3 {
		t.Errorf("DeleteGrantsOfSubject(user, id-alice) = %d, want 3", n)
	}
	if d := cmp.Diff([]store.Grant{aliceGroup, bob}, listGrants(t, s), equateTime); d != "" {
		t.Errorf("after DeleteGrantsOfSubject (-want +got):\n%s", d)
	}
	v := accessVersion(t, s)
	if n := deleteOf("user", "id-alice"); n != 0 {
		t.Errorf("DeleteGrantsOfSubject again = %d, want 0", n)
	}
	if n := deleteOf("service-account", "sa-nobody"); n != 0 {
		t.Errorf("DeleteGrantsOfSubject(subject without grants) = %d, want 0", n)
	}
	if got := accessVersion(t, s); got != v {
		t.Errorf("AccessVersion after deleting nothing = %d, want %d", got, v)
	}
	if n := deleteOf("group", "id-alice"); n != 1 {
		t.Errorf("DeleteGrantsOfSubject(group, id-alice) = %d, want 1", n)
	}
	if d := cmp.Diff([]store.Grant{bob}, listGrants(t, s), equateTime); d != "" {
		t.Errorf("after DeleteGrantsOfSubject(group) (-want +got):\n%s", d)
	}
}

// testAccessVersion checks that every change to domains or grants moves
// the version forward, and that reads and failed changes leave it alone.
func testAccessVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := accessVersion(t, s)
	step := func(what string, fn func(tx store.Tx) error, wantChange bool) {
		t.Helper()
		var inside int64
		// The transaction sees its own bump, and a failed change leaves
		// the version as it was even if the transaction goes on.
		err := s.InTx(ctx, func(tx store.Tx) (err error) {
			if err := fn(tx); err != nil {
				return err
			}
			inside, err = tx.Grants().AccessVersion(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("%s: InTx: %v", what, err)
		}
		after := accessVersion(t, s)
		if inside != after {
			t.Errorf("%s: AccessVersion inside the transaction = %d, after commit %d", what, inside, after)
		}
		switch {
		case wantChange && after <= v:
			t.Errorf("%s: AccessVersion = %d, want more than %d", what, after, v)
		case !wantChange && after != v:
			t.Errorf("%s: AccessVersion = %d, want it unchanged at %d", what, after, v)
		}
		v = after
	}
	step("CreateDomain", func(tx store.Tx) error { return tx.Domains().CreateDomain(ctx, domain("com.acme")) }, true)
	step("CreateGrant", func(tx store.Tx) error {
		return tx.Grants().CreateGrant(ctx, grant("g1", "user", "id-alice", "com.acme", "read"))
	}, true)
	step(`CreateGrant("*")`, func(tx store.Tx) error {
		return tx.Grants().CreateGrant(ctx, grant("g2", "user", "id-alice", "*", "read"))
	}, true)
	step("reads", func(tx store.Tx) error {
		if _, err := tx.Domains().ListDomains(ctx); err != nil {
			return err
		}
		if _, err := tx.Domains().DomainExists(ctx, "com.acme"); err != nil {
			return err
		}
		if _, err := tx.Grants().ListGrants(ctx); err != nil {
			return err
		}
		if _, err := tx.Grants().GrantByID(ctx, "g1"); err != nil {
			return err
		}
		_, err := tx.Grants().AccessVersion(ctx)
		return err
	}, false)
	step("failed changes", func(tx store.Tx) error {
		for what, err := range map[string]error{
			"CreateDomain(name taken)":    tx.Domains().CreateDomain(ctx, domain("com.acme")),
			"CreateGrant(id taken)":       tx.Grants().CreateGrant(ctx, grant("g1", "user", "id-bob", "com.acme", "read")),
			"CreateGrant(unknown domain)": tx.Grants().CreateGrant(ctx, grant("g3", "user", "id-bob", "org.unknown", "read")),
			"DeleteDomain(in use)":        tx.Domains().DeleteDomain(ctx, "com.acme"),
			"DeleteDomain(unknown)":       tx.Domains().DeleteDomain(ctx, "org.unknown"),
			"DeleteGrant(unknown)":        tx.Grants().DeleteGrant(ctx, "nope"),
		} {
			if err == nil {
				t.Errorf("%s succeeded, want an error", what)
			}
		}
		n, err := tx.Grants().DeleteGrantsOfSubject(ctx, "user", "id-nobody")
		if n != 0 {
			t.Errorf("DeleteGrantsOfSubject(subject without grants) = %d, want 0", n)
		}
		return err
	}, false)
	step("DeleteGrant", func(tx store.Tx) error { return tx.Grants().DeleteGrant(ctx, "g1") }, true)
	step("DeleteGrantsOfSubject", func(tx store.Tx) error {
		_, err := tx.Grants().DeleteGrantsOfSubject(ctx, "user", "id-alice")
		return err
	}, true)
	step("DeleteDomain", func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") }, true)
}

// testAccessRollback checks that a rolled-back grant takes its version
// bump with it.
func testAccessRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	createDomains(t, s, domain("com.acme"))
	v := accessVersion(t, s)
	errBoom := errors.New("boom")
	g := grant("g1", "user", "id-alice", "com.acme", "all")
	err := s.InTx(ctx, func(tx store.Tx) error {
		if err := tx.Grants().CreateGrant(ctx, g); err != nil {
			return err
		}
		if inside, err := tx.Grants().AccessVersion(ctx); err != nil || inside <= v {
			t.Errorf("AccessVersion inside the transaction = %d, %v; want more than %d", inside, err, v)
		}
		return errBoom
	})
	wantIs(t, "InTx", err, errBoom)
	_, err = get(s, func(tx store.Tx) (store.Grant, error) { return tx.Grants().GrantByID(ctx, g.ID) })
	wantIs(t, "GrantByID after rollback", err, store.ErrNotFound)
	if got := accessVersion(t, s); got != v {
		t.Errorf("AccessVersion after rollback = %d, want %d", got, v)
	}
	// The domain is free to delete: the rolled-back grant does not hold it.
	inTx(t, s, func(tx store.Tx) error { return tx.Domains().DeleteDomain(ctx, "com.acme") })
}
