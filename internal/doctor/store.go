package doctor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/store"
)

// SigningKeys checks that token-signing keys rotate: the newest key must
// be younger than two rotation periods (the server rotates on schedule
// while it runs; an older key means it has not, or the clock moved).
func SigningKeys(keys []store.SigningKey, rotation time.Duration, now time.Time) Result {
	if len(keys) == 0 {
		return fail("keys.signing", "start rampart serve once: it creates the signing key", "no token-signing key in the store")
	}
	newest := keys[0]
	for _, k := range keys[1:] {
		if k.CreatedAt.After(newest.CreatedAt) {
			newest = k
		}
	}
	age := now.Sub(newest.CreatedAt)
	if rotation > 0 && age > 2*rotation {
		return warn("keys.signing", "rampart keys rotate (and check that the server runs with its rotation schedule)",
			"the newest token-signing key is %s old, over twice the rotation period %s", age.Round(time.Hour), rotation)
	}
	return pass("keys.signing", "token-signing keys: %d, the newest %s old (rotation every %s)", len(keys), age.Round(time.Minute), rotation)
}

// MaxKeyFileAge is how old a long-lived key file may grow before doctor
// suggests replacing it.
const MaxKeyFileAge = 365 * 24 * time.Hour

// KeyFileAge reports the age of a long-lived key file (master key, audit
// checkpoint key), from its modification time.
func KeyFileAge(id, file string, modTime, now time.Time, fix string) Result {
	age := now.Sub(modTime)
	if age > MaxKeyFileAge {
		return warn(id, fix, "%s is %d days old", file, days(age))
	}
	return pass(id, "%s is %d days old", file, days(age))
}

// AuditChain turns audit.Verify's outcome into a result: FAIL when the
// chain is broken (naming the first bad record) or cannot be read.
func AuditChain(rep audit.Report, err error) Result {
	const id = "audit.chain"
	if ve := (*audit.VerifyError)(nil); errors.As(err, &ve) {
		return fail(id, "investigate: the log was changed outside Rampart; restore the database from a backup and compare with the JSON-lines copy (rampart audit verify --copy)",
			"audit log is NOT intact: %v (%d records before it verified)", ve, rep.Records)
	}
	if err != nil {
		return fail(id, "check the database file and keys/"+audit.PublicKeyFile, "cannot verify the audit log: %v", err)
	}
	return pass(id, "audit log intact: %d records, %d checkpoints, %d not yet signed", rep.Records, rep.Checkpoints, rep.Unsigned)
}

// Registry checks the model registry's trust: domains that admit unsigned
// models (the explicit, audited setting; FAIL, named), unsigned and
// quarantined versions, and versions whose signer key has since been
// revoked, expired or deleted.
func Registry(unsignedDomains []string, versions []store.ModelVersion, keys []store.SignerKey, now time.Time) []Result {
	var rs []Result
	if len(unsignedDomains) > 0 {
		names := make([]string, len(unsignedDomains))
		for i, d := range unsignedDomains {
			names[i] = d
			if d == "*" {
				names[i] = "* (models without a domain)"
			}
		}
		rs = append(rs, fail("registry.unsigned-admission",
			"unless you mean it, turn it off: PUT /api/v1/domains/{name}/unsigned-admission {\"allowed\":false} (admin), and sign those models",
			"domains that admit unsigned models: %s", strings.Join(names, ", ")))
	} else {
		rs = append(rs, pass("registry.unsigned-admission", "no domain admits unsigned models"))
	}
	byID := make(map[string]store.SignerKey, len(keys))
	for _, k := range keys {
		byID[k.ID] = k
	}
	var unsigned, quarantined, untrusted []string
	for _, v := range versions {
		name := v.ModelID + "@" + v.Version
		if v.State == store.VersionQuarantined {
			quarantined = append(quarantined, fmt.Sprintf("%s (%s)", name, v.StateReason))
		}
		if !v.Signed {
			unsigned = append(unsigned, name)
			continue
		}
		k, ok := byID[v.SignerKeyID]
		switch {
		case !ok:
			untrusted = append(untrusted, name+" (key deleted)")
		case !k.RevokedAt.IsZero():
			untrusted = append(untrusted, name+" (key revoked)")
		case !k.NotAfter.IsZero() && now.After(k.NotAfter):
			untrusted = append(untrusted, name+" (key expired)")
		}
	}
	if len(unsigned) > 0 {
		rs = append(rs, warn("registry.unsigned-versions", "sign these models and onboard signed versions, then delete the unsigned ones",
			"model versions admitted unsigned: %s", strings.Join(unsigned, ", ")))
	}
	if len(quarantined) > 0 {
		rs = append(rs, warn("registry.quarantined", "find out why the stored bytes changed; delete the version and onboard it again",
			"quarantined model versions: %s", strings.Join(quarantined, ", ")))
	}
	if len(untrusted) > 0 {
		rs = append(rs, warn("registry.signer-keys", "re-sign these models with a current key and onboard them again, or delete them",
			"model versions whose signer key is no longer trusted: %s", strings.Join(untrusted, ", ")))
	}
	if len(unsigned)+len(quarantined)+len(untrusted) == 0 {
		rs = append(rs, pass("registry.versions", "model versions: %d, all signed by currently trusted keys", len(versions)))
	}
	return rs
}

// Grants warns about grants on the wildcard "*" (every model without a
// domain) to groups: a group, especially a federated one, can stand for
// everyone who logs in.
func Grants(grants []store.Grant) Result {
	var wide []string
	for _, g := range grants {
		if g.Domain == "*" && g.SubjectKind == "group" {
			wide = append(wide, fmt.Sprintf("%s on * to group %s", g.Privilege, g.SubjectID))
		}
	}
	if len(wide) > 0 {
		return warn("access.wildcard-grants", "revoke them (rampart grants revoke) and grant on a domain to the users or service accounts that need it",
			"grants on * to whole groups: %s", strings.Join(wide, "; "))
	}
	return pass("access.wildcard-grants", "grants: %d, none on * to a whole group", len(grants))
}

// Admins warns about enabled admin accounts without a second factor.
func Admins(accounts []store.Account) Result {
	var bare []string
	n := 0
	for _, a := range accounts {
		if !a.Admin || a.Disabled {
			continue
		}
		n++
		if len(a.TOTPSecret) == 0 {
			bare = append(bare, a.Name)
		}
	}
	if len(bare) > 0 {
		return warn("accounts.admin-totp", "each of them: log in and enrol TOTP (POST /api/v1/me/totp)",
			"admin accounts without TOTP: %s", strings.Join(bare, ", "))
	}
	return pass("accounts.admin-totp", "admin accounts: %d, all with TOTP", n)
}
