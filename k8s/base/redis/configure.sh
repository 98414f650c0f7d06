#!/bin/sh
# Writes redis.conf and sentinel.conf for this pod into /etc/redis-runtime
# (an emptyDir: Sentinel rewrites its file, the root filesystem is read-only).
#
# Who is the master? Ask the Sentinels of the other pods first: after a
# failover the master may be any pod, and a restarted pod must rejoin as a
# replica. Only when no Sentinel answers (first start, or every pod restarted
# at once) does redis-0 start as master and the others replicate from it.
set -eu

PASSWORD="$(cat /etc/redis-secret/password)"
export REDISCLI_AUTH="$PASSWORD"
DOMAIN="redis-headless.${POD_NAMESPACE}.svc"
SELF="${POD_NAME}.${DOMAIN}"
MASTER_NAME="hospital-erp"

master=""
for i in 0 1 2; do
	peer="redis-${i}.${DOMAIN}"
	[ "redis-${i}" = "$POD_NAME" ] && continue
	answer="$(timeout 3 redis-cli -h "$peer" -p 26379 --no-auth-warning \
		sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1 || true)"
	case "$answer" in
	"" | "(nil)" | *ERR* | *NOAUTH* | *Could*) ;;
	*) master="$answer"; break ;;
	esac
done
if [ -z "$master" ]; then
	master="redis-0.${DOMAIN}"
fi
echo "pod ${SELF}: master is ${master}"

cat >/etc/redis-runtime/redis.conf <<CONF
bind * -::*
port 6379
dir /data
requirepass ${PASSWORD}
masterauth ${PASSWORD}
replica-announce-ip ${SELF}
replica-announce-port 6379
# Persistence: an RDB snapshot every 5 minutes (when anything changed) plus
# the append-only file, fsynced every second.
save 300 1
appendonly yes
appendfsync everysec
# 75% of the container's memory limit, leaving room for the fork of a snapshot.
maxmemory $((REDIS_MEMORY_LIMIT_MIB * 3 / 4))mb
maxmemory-policy volatile-lru
CONF
if [ "$master" != "$SELF" ]; then
	echo "replicaof ${master} 6379" >>/etc/redis-runtime/redis.conf
fi

cat >/etc/redis-runtime/sentinel.conf <<CONF
port 26379
dir /etc/redis-runtime
requirepass ${PASSWORD}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SELF}
sentinel monitor ${MASTER_NAME} ${master} 6379 2
sentinel auth-pass ${MASTER_NAME} ${PASSWORD}
sentinel down-after-milliseconds ${MASTER_NAME} 5000
sentinel failover-timeout ${MASTER_NAME} 60000
sentinel parallel-syncs ${MASTER_NAME} 1
CONF
