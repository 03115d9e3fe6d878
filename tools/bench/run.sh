#!/usr/bin/env bash
# make bench: installs the pinned Powertools side (npm ci in tools/bench/powertools)
# and runs go run ./tools/bench against its own dynalite (port $BENCH_DYNAMO_PORT,
# default 8123, so it shares no server with tests or a local run), under
# kms/ctl.sh run: local-kms for the encrypted side (idemlambda-kms), which
# runs the bench in a private network namespace, so the modules are fetched
# and the bench built first (the namespace has no network). Extra arguments
# go to the Go command (go run ./tools/bench -h lists them).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "${root}"
tools/bench/powertools/install.sh
export DYNAMO_PORT="${BENCH_DYNAMO_PORT:-8123}"
bin="$(mktemp -d)/bench"
trap 'rm -rf "$(dirname "${bin}")"' EXIT
"${GO:-go}" build -o "${bin}" ./tools/bench
kms/ctl.sh run -- dynalite/ctl.sh run -- "${bin}" "$@"
