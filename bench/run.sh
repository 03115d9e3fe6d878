#!/usr/bin/env bash
# make bench: installs the pinned Powertools side (npm ci in bench/powertools)
# and runs go run ./bench against its own dynalite (port $BENCH_DYNAMO_PORT,
# default 8123, so it shares no server with tests or a local run). Extra
# arguments go to the Go command (go run ./bench -h lists them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "${root}"
if [ ! -d bench/powertools/node_modules/@aws-lambda-powertools/idempotency ] ||
	[ bench/powertools/package-lock.json -nt bench/powertools/node_modules/.package-lock.json ]; then
	(cd bench/powertools && npm ci --no-audit --no-fund --loglevel=error)
fi
export DYNAMO_PORT="${BENCH_DYNAMO_PORT:-8123}"
exec dynalite/ctl.sh run -- "${GO:-go}" run ./bench "$@"
