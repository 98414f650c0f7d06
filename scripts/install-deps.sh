#!/bin/sh
# Installs the Debian packages a target needs when they are missing.
#   scripts/install-deps.sh run    PostgreSQL server binaries (make run)
#   scripts/install-deps.sh test   PostgreSQL, PgBouncer, Redis, Sentinel, NGINX, Chromium, Prometheus and
#                                  Alertmanager (make test)
#   scripts/install-deps.sh bench  PostgreSQL, PgBouncer, Redis, redis-benchmark (make bench)
# As root it runs apt-get; otherwise it prints the line to run and fails.
set -eu

want=${1:-test}
missing=""

has_pg() {
	command -v initdb >/dev/null 2>&1 && return 0
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

has_pg || missing="$missing postgresql"
if [ "$want" = test ]; then
	has pgbouncer || missing="$missing pgbouncer"
	has redis-server || missing="$missing redis-server"
	has redis-sentinel || missing="$missing redis-sentinel"
	has nginx || missing="$missing nginx"
	has chromium || missing="$missing chromium"
	# The monitoring tests: promtool, the Prometheus server, amtool and
	# Alertmanager (docs/observability.md).
	{ has prometheus && has promtool; } || missing="$missing prometheus"
	{ has prometheus-alertmanager && has amtool; } || missing="$missing prometheus-alertmanager"
fi
if [ "$want" = bench ]; then
	has pgbouncer || missing="$missing pgbouncer"
	has redis-server || missing="$missing redis-server"
	has redis-benchmark || missing="$missing redis-tools"
	has taskset || missing="$missing util-linux"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "Missing Debian packages:$missing" >&2
	echo "Install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "Installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts none of these as services here; the tests start their own.
