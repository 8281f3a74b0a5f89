#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library that internal/runtime/onnx loads
# (through github.com/yalue/onnxruntime_go v1.27.0, which needs ORT 1.24.1) to
#
#   ${RAMPART_CACHE:-$HOME/.cache/rampart}/onnxruntime/1.24.1/libonnxruntime.so.1
#
# Source: the npm package onnxruntime-node@1.24.1 (MIT), which ships the
# official Linux x64 CPU build at package/bin/napi-v6/linux/x64/. `npm pack`
# downloads the tarball WITHOUT running its install script (that script
# downloads CUDA parts and fails without the internet). Both the tarball and
# the extracted library are checked against the SHA-256 values pinned below
# before the library is put in place; only that one file is extracted, and it
# appears under its final name atomically (temp file + rename), so a
# concurrent reader never sees half a library.
# Idempotent: a present library whose checksum matches is not fetched again.
# Needs npm and the npm registry; Linux x64 only.
#
# Usage: scripts/fetch-onnxruntime.sh
set -euo pipefail

version=1.24.1
tarball_sha256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
library_sha256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

cache=${RAMPART_CACHE:-$HOME/.cache/rampart}
dir=$cache/onnxruntime/$version
lib=$dir/libonnxruntime.so.1

sha256() { sha256sum "$1" | awk '{print $1}'; }

if [[ $(uname -s)/$(uname -m) != Linux/x86_64 ]]; then
	echo "fetch-onnxruntime: only Linux x86_64 is supported (this is $(uname -s)/$(uname -m))" >&2
	exit 1
fi

if [[ -f $lib ]]; then
	if [[ $(sha256 "$lib") == "$library_sha256" ]]; then
		echo "$lib is up to date"
		exit 0
	fi
	echo "fetch-onnxruntime: $lib has the wrong checksum; fetching it again" >&2
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetching onnxruntime-node@$version (about 86 MB)..."
(cd "$work" && npm pack --silent --ignore-scripts "onnxruntime-node@$version" >/dev/null)
tgz=$(find "$work" -maxdepth 1 -name '*.tgz' -print -quit)
if [[ -z $tgz ]]; then
	echo "fetch-onnxruntime: npm pack onnxruntime-node@$version produced no tarball" >&2
	exit 1
fi

check() { # check WHAT FILE WANT
	local got
	got=$(sha256 "$2")
	if [[ $got != "$3" ]]; then
		echo "fetch-onnxruntime: CHECKSUM MISMATCH for $1" >&2
		echo "  want sha256 $3" >&2
		echo "  got  sha256 $got" >&2
		echo "  the file was not used; investigate before changing the pinned value" >&2
		exit 1
	fi
}
check "the onnxruntime-node@$version tarball" "$tgz" "$tarball_sha256"

mkdir "$work/x"
tar -xzf "$tgz" -C "$work/x" --no-same-owner --no-same-permissions -- "$member"
check "$member" "$work/x/$member" "$library_sha256"

# $work is inside $dir, so the rename stays on one file system and is atomic.
tmp=$work/libonnxruntime.so.1
mv "$work/x/$member" "$tmp"
chmod 0444 "$tmp"
mv -f "$tmp" "$lib"
echo "installed $lib"
