#!/usr/bin/env bash
# Builds the zitadel example OpenID Provider, an independent OIDC provider the
# federation tests (internal/identity/federation) run against:
#
#   ${RAMPART_CACHE:-$HOME/.cache/rampart}/bin/zitadel-oidc-example
#
# Needs go and the Go module proxy. Idempotent: does nothing when a binary
# built from the pinned version is already there. The first build takes
# about a minute.
#
# Usage: scripts/install-oidc-example.sh
set -euo pipefail

MODULE=github.com/zitadel/oidc/v3
PACKAGE=$MODULE/example/server
VERSION=v3.51.17 # pinned: the proxy serves exact versions only

cache=${RAMPART_CACHE:-$HOME/.cache/rampart}
bindir=$cache/bin
bin=$bindir/zitadel-oidc-example

# built_from_pin succeeds when $1 is a Go binary whose main module is the
# pinned version (so bumping VERSION rebuilds).
built_from_pin() {
	go version -m "$1" 2>/dev/null |
		awk -v m="$MODULE" -v v="$VERSION" '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

if [[ -x $bin ]] && built_from_pin "$bin"; then
	echo "$bin is up to date ($PACKAGE@$VERSION)"
	exit 0
fi

mkdir -p "$bindir"
tmp=$(mktemp -d "$bindir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "building $PACKAGE@$VERSION (about a minute the first time)..."
# Outside any module and workspace, so the repository's go.mod plays no part.
(cd "$tmp" && GOWORK=off GOFLAGS=-buildvcs=false GOBIN="$tmp" go install -trimpath "$PACKAGE@$VERSION")
# Rename atomically so a concurrent test never sees a half-written binary.
mv -f "$tmp/server" "$bin"
echo "installed $bin"
