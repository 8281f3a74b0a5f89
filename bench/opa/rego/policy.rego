# Rampart's access decision (access.Policy.Decide in internal/access),
# restated in Rego for the comparison in bench/opa. It must give the same
# answer as Decide to every question; the differential test checks that on
# 100,000 random ones.
#
# input: {"requester": {"id", "kind", "groups", "admin"},
#         "target": {"kind", "domain"}, "want": "infer" | "read" | "all"}
# data.grants[subject kind][subject id][domain or "*"] = "infer" | "read" | "all"
#
# decision: {"allowed", "effective" (0 none, 1 infer, 2 read, 3 all), "admin"}
package rampart.access

rank := {"infer": 1, "read": 2, "all": 3}

kinds := {
	"model", "model-service", "flow", "flow-deployment",
	"training-package", "training-job", "notebook",
}

requester_kinds := {"user", "service-account"}

# Domain names: 1 to 10 labels of [a-z0-9-], 1 to 63 bytes each, not
# starting or ending with '-'; 253 bytes at most ("*" is not a name).
domain_pattern := `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?){0,9}$`

decision := {"allowed": false, "effective": 0, "admin": false} if {
	not valid_question # a bug in the caller: denied, for admins too
} else := {"allowed": true, "effective": 3, "admin": true} if {
	input.requester.admin == true
} else := {"allowed": false, "effective": 0, "admin": false} if {
	not valid_requester
} else := {"allowed": effective >= rank[input.want], "effective": effective, "admin": false}

valid_question if {
	rank[input.want]
	kinds[input.target.kind]
	valid_domain
}

valid_domain if input.target.domain == ""

valid_domain if {
	count(input.target.domain) <= 253
	regex.match(domain_pattern, input.target.domain)
}

valid_requester if {
	requester_kinds[input.requester.kind]
	input.requester.id != ""
}

# The grant domains that reach the target: only "*" for a target without
# a domain; otherwise the domain and each of its ancestors, never "*".
levels := {"*"} if input.target.domain == ""

levels := {concat(".", array.slice(labels, 0, n)) | some n in numbers.range(1, count(labels))} if {
	input.target.domain != ""
	labels := split(input.target.domain, ".")
}

# The privileges of the matching grants: the requester's own and its
# groups', on every level. Each is a direct look-up in data.grants.
privileges contains rank[p] if {
	some level in levels
	p := data.grants[input.requester.kind][input.requester.id][level]
}

privileges contains rank[p] if {
	some group in input.requester.groups
	some level in levels
	p := data.grants.group[group][level]
}

# Effective privilege: the highest, 0 (none) without a match (default deny).
effective := max(privileges | {0})
