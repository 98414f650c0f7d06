#!/bin/sh
# Readiness/liveness of the redis or sentinel container: PING must answer PONG
# (a loading or unauthenticated server answers something else).
# Usage: probe.sh <port>
REDISCLI_AUTH="$(cat /etc/redis-secret/password)"
export REDISCLI_AUTH
[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" --no-auth-warning ping)" = PONG ]
