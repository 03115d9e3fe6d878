#!/usr/bin/env bash
# Installs, starts and stops a local Redis server (Debian's redis-server
# package, Redis 7) for the Redis store's tests and the local run. Tests
# start their own private server per test binary; this script installs it and
# serves the local stack.
#
#   ctl.sh install          apt-get install redis-server, when missing (root)
#   ctl.sh start            start on 127.0.0.1:$REDIS_PORT unless one answers
#   ctl.sh stop             stop the server this script started
#   ctl.sh status           exit 0 when a server answers
#   ctl.sh run -- CMD...    run CMD with REDIS_URL set, starting a server
#                           first when none answers and stopping it afterwards
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
port="${REDIS_PORT:-6379}"
url="redis://127.0.0.1:${port}/0"
state="${here}/.state"
pidfile="${state}/redis-${port}.pid"
logfile="${state}/redis-${port}.log"

answers() {
	command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "${port}" ping 2>/dev/null)" = PONG ]
}

install() {
	if command -v redis-server >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "redis: redis-server is missing; install it as root: apt-get install -y redis-server" >&2
		return 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
	redis-server --version
}

start() {
	if answers; then
		echo "redis: a server already answers at ${url}"
		return 0
	fi
	install
	mkdir -p "${state}"
	# No persistence, no unix socket, never evict: a claim must not vanish.
	redis-server --bind 127.0.0.1 --port "${port}" --save '' --appendonly no \
		--dir "${state}" --maxmemory-policy noeviction --daemonize no >"${logfile}" 2>&1 &
	echo $! >"${pidfile}"
	for _ in $(seq 1 100); do
		if answers; then
			echo "redis: started at ${url} (pid $(cat "${pidfile}"))"
			return 0
		fi
		if ! kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
			echo "redis: exited at start:" >&2
			cat "${logfile}" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "redis: no answer at ${url} after 10 s" >&2
	return 1
}

stop() {
	if [ -f "${pidfile}" ]; then
		pid="$(cat "${pidfile}")"
		kill "${pid}" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "${pid}" 2>/dev/null || break
			sleep 0.1
		done
		rm -f "${pidfile}"
		echo "redis: stopped"
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
	export REDIS_URL="${url}"
	rc=0
	"$@" || rc=$?
	if [ "${started}" = yes ]; then stop; fi
	exit "${rc}"
	;;
*)
	sed -n '2,14p' "$0" >&2
	exit 2
	;;
esac
