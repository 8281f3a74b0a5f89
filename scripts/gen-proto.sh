#!/usr/bin/env bash
# Regenerates the Go code of the Open Inference Protocol v2 gRPC API
# (internal/inference/oippb) from its .proto. The generated code is committed,
# so building and testing Rampart never needs protoc; run this (make proto)
# only after changing the .proto or the pinned generator versions.
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler). The Go
# plugins are built from the module proxy at pinned versions into the tool
# cache; protoc-gen-go must match go.mod's google.golang.org/protobuf.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${CACHE:-$HOME/.cache/rampart}/tools
bin=$tools/protoc-plugins-$PROTOC_GEN_GO_VERSION-$PROTOC_GEN_GO_GRPC_VERSION

if ! command -v protoc >/dev/null; then
  echo "gen-proto: protoc not found; install it (Debian: apt-get install -y protobuf-compiler)" >&2
  exit 1
fi
if [[ ! -x $bin/protoc-gen-go || ! -x $bin/protoc-gen-go-grpc ]]; then
  mkdir -p "$bin"
  GOBIN=$bin go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
  GOBIN=$bin go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

cd "$root/internal/inference/oippb"
PATH=$bin:$PATH protoc -I . \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  open_inference_grpc.proto
echo "gen-proto: regenerated internal/inference/oippb with $(protoc --version)"
