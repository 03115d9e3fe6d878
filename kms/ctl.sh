#!/usr/bin/env bash
# Installs and runs local-kms (github.com/nsmithuk/local-kms, a KMS API
# server) for the KMS encryption tests (idempotent/idemkms), seeded with the
# fixed test keys of seed.yaml.
#
#   ctl.sh install          go install the pinned local-kms into .build/bin
#   ctl.sh run -- CMD...    run CMD with AWS_ENDPOINT_URL_KMS set, local-kms
#                           and CMD together in a private network namespace
#
# local-kms binds ":$PORT" — every interface — and has no setting for the
# listen address (src/server.go builds the address as ":"+PORT). So this
# script never runs it in the host's network: `run` makes a new network
# namespace (unshare --net, or --net --map-root-user without root) whose only
# interface is its own loopback, brings lo up, and runs local-kms and CMD in
# it. Nothing outside the namespace can reach the server. CMD sees only that
# loopback too (no network: fetch modules before, e.g. go mod download); the
# local dynalite and redis-server start inside the namespace when CMD starts
# them. When no namespace can be made, run refuses rather than serve on every
# interface.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "${here}")"
version="v0.0.0-20260228092603-2a5e92d09ab6"
bin="${root}/.build/bin/local-kms"
port="${KMS_PORT:-4599}"

install() {
	if go version -m "${bin}" 2>/dev/null | grep -q "${version}"; then
		return 0
	fi
	echo "installing local-kms ${version} into .build/bin"
	GOBIN="${root}/.build/bin" GOWORK=off GOFLAGS=-mod=mod go install "github.com/nsmithuk/local-kms@${version}"
}

answers() {
	(exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
}

# inside runs in the private namespace: lo up, local-kms, CMD, stop.
inside() {
	if ! ip link set lo up; then
		echo "kms: cannot bring up the namespace's loopback (needs ip from iproute2)" >&2
		return 1
	fi
	state="$(mktemp -d)"
	KMS_ACCOUNT_ID=111122223333 KMS_REGION=us-east-1 KMS_DATA_PATH="${state}/data" \
		KMS_SEED_PATH="${here}/seed.yaml" PORT="${port}" "${bin}" >"${state}/local-kms.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		answers && break
		if ! kill -0 "${pid}" 2>/dev/null; then
			echo "kms: local-kms exited at start:" >&2
			cat "${state}/local-kms.log" >&2
			return 1
		fi
		sleep 0.1
	done
	answers || { echo "kms: no answer on 127.0.0.1:${port} after 10 s" >&2; return 1; }
	export AWS_ENDPOINT_URL_KMS="http://127.0.0.1:${port}" IDEMKMS_REGION=us-east-1
	rc=0
	"$@" || rc=$?
	kill "${pid}" 2>/dev/null || true
	wait "${pid}" 2>/dev/null || true
	rm -rf "${state}"
	return "${rc}"
}

case "${1:-}" in
install) install ;;
run)
	shift
	[ "${1:-}" = "--" ] && shift
	install
	if unshare --net true 2>/dev/null; then
		exec unshare --net "$0" _inside "$@"
	elif unshare --net --map-root-user true 2>/dev/null; then
		exec unshare --net --map-root-user "$0" _inside "$@"
	fi
	echo "kms: cannot make a private network namespace (unshare --net); local-kms would listen on every interface, so it is not started" >&2
	exit 1
	;;
_inside)
	shift
	inside "$@"
	;;
*)
	sed -n '2,20p' "$0" >&2
	exit 2
	;;
esac
