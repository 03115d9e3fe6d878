#!/usr/bin/env bash
# Starts and stops the local DynamoDB-compatible server (the npm package
# dynalite, pinned in package.json / package-lock.json) for tests and the
# local run. Amazon's DynamoDB Local is never used.
#
#   ctl.sh install          npm ci, once
#   ctl.sh start            start on 127.0.0.1:$DYNAMO_PORT unless one answers
#   ctl.sh stop             stop the server this script started
#   ctl.sh status           exit 0 when a server answers
#   ctl.sh run -- CMD...    run CMD with AWS_ENDPOINT_URL_DYNAMODB set,
#                           starting a server first when none answers and
#                           stopping it afterwards
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
port="${DYNAMO_PORT:-8000}"
endpoint="http://127.0.0.1:${port}"
state="${here}/.state"
pidfile="${state}/dynalite-${port}.pid"
logfile="${state}/dynalite-${port}.log"

answers() {
	node -e "require('http').get('${endpoint}/', r => { r.resume(); process.exit(0) }).on('error', () => process.exit(1))"
}

install() {
	if [ ! -f "${here}/node_modules/dynalite/package.json" ] ||
		[ "${here}/package-lock.json" -nt "${here}/node_modules/.package-lock.json" ]; then
		(cd "${here}" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

start() {
	if answers; then
		echo "dynalite: a server already answers at ${endpoint}"
		return 0
	fi
	install
	mkdir -p "${state}"
	nohup node "${here}/serve.js" --host 127.0.0.1 --port "${port}" \
		--createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"${logfile}" 2>&1 &
	echo $! >"${pidfile}"
	for _ in $(seq 1 100); do
		if answers; then
			echo "dynalite: started at ${endpoint} (pid $(cat "${pidfile}"))"
			return 0
		fi
		if ! kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
			echo "dynalite: exited at start:" >&2
			cat "${logfile}" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "dynalite: no answer at ${endpoint} after 10 s" >&2
	return 1
}

stop() {
	if [ -f "${pidfile}" ]; then
		kill "$(cat "${pidfile}")" 2>/dev/null || true
		rm -f "${pidfile}"
		echo "dynalite: stopped"
	fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
status) answers ;;
run)
	shift
	[ "${1:-}" = "--" ] && shift
	started=no
	if ! answers; then
		start
		started=yes
	fi
	export AWS_ENDPOINT_URL_DYNAMODB="${endpoint}"
	export AWS_REGION="${AWS_REGION:-us-east-1}"
	export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
	rc=0
	"$@" || rc=$?
	if [ "${started}" = yes ]; then stop; fi
	exit "${rc}"
	;;
*)
	sed -n '2,13p' "$0" >&2
	exit 2
	;;
esac
