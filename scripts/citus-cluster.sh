#!/usr/bin/env bash
# A private, throwaway Citus cluster for the tests, the demo and the benchmarks: a coordinator
# and WORKERS workers (default 2), each a private instance from scripts/pg-cluster.sh
# (target/clusters/citus-coord, citus-w1, ...), with Citus preloaded and the database
# CITUS_DB (default skycat) holding Citus and skycat on every node.
#
#   scripts/citus-cluster.sh start     start (creating it if needed); prints the coordinator's env
#   scripts/citus-cluster.sh stop      stop every node (the data stays)
#   scripts/citus-cluster.sh destroy   stop every node and delete the data
#   scripts/citus-cluster.sh env       the coordinator's env file (PGHOST, PGPORT, PGUSER, PGDATABASE)
#
# Nodes talk over Unix sockets: a node's name is its socket directory (Citus refuses
# `localhost` as the coordinator's name). Needs Citus installed (scripts/citus-setup.sh) and
# skycat installed (make install).
set -euo pipefail

cmd=${1:?usage: citus-cluster.sh start|stop|destroy|env}
WORKERS=${WORKERS:-2}
CITUS_DB=${CITUS_DB:-skycat}
repo=$(cd "$(dirname "$0")/.." && pwd)
cluster="$repo/scripts/pg-cluster.sh"
nodes=(citus-coord)
for i in $(seq 1 "$WORKERS"); do nodes+=("citus-w$i"); done
envfile="$repo/target/clusters/citus.env"

# Citus keeps two-phase commit for multi-shard writes: prepared transactions must be allowed.
export PG_EXTRA_OPTS="-c shared_preload_libraries=citus -c max_prepared_transactions=100 -c max_connections=200 -c citus.log_remote_commands=off"

psql_on() { # psql_on NODE DB SQL...
  local node=$1 db=$2
  shift 2
  (. "$repo/target/clusters/$node.env" && psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@")
}

case "$cmd" in
start)
  for n in "${nodes[@]}"; do "$cluster" start "$n" >/dev/null; done
  for n in "${nodes[@]}"; do
    if [ "$(psql_on "$n" postgres -tAc "SELECT count(*) FROM pg_database WHERE datname = '$CITUS_DB'")" = 0 ]; then
      psql_on "$n" postgres -c "CREATE DATABASE $CITUS_DB"
    fi
    # Citus first: it must be the first extension created in a database. (Only when missing: a
    # worker that already belongs to the cluster refuses DDL, even CREATE ... IF NOT EXISTS.)
    for ext in citus skycat; do
      if [ "$(psql_on "$n" "$CITUS_DB" -tAc "SELECT count(*) FROM pg_extension WHERE extname = '$ext'")" = 0 ]; then
        psql_on "$n" "$CITUS_DB" -c "CREATE EXTENSION $ext"
      fi
    done
  done
  coord_host=$(. "$repo/target/clusters/citus-coord.env" && echo "$PGHOST")
  coord_port=$(. "$repo/target/clusters/citus-coord.env" && echo "$PGPORT")
  psql_on citus-coord "$CITUS_DB" -c "SELECT citus_set_coordinator_host('$coord_host', $coord_port)" >/dev/null
  for n in "${nodes[@]:1}"; do
    host=$(. "$repo/target/clusters/$n.env" && echo "$PGHOST")
    port=$(. "$repo/target/clusters/$n.env" && echo "$PGPORT")
    # A restarted node may have moved to another port: update it then.
    known=$(psql_on citus-coord "$CITUS_DB" -tAc "SELECT nodeport FROM pg_dist_node WHERE nodename = '$host'")
    if [ -z "$known" ]; then
      psql_on citus-coord "$CITUS_DB" -c "SELECT citus_add_node('$host', $port)" >/dev/null
    elif [ "$known" != "$port" ]; then
      psql_on citus-coord "$CITUS_DB" -c "SELECT citus_update_node(nodeid, '$host', $port) FROM pg_dist_node WHERE nodename = '$host'" >/dev/null
    fi
  done
  sed "s/^export PGDATABASE=.*/export PGDATABASE=$CITUS_DB/" "$repo/target/clusters/citus-coord.env" >"$envfile"
  cat "$envfile"
  ;;
stop)
  for n in "${nodes[@]}"; do "$cluster" stop "$n"; done
  ;;
destroy)
  for n in "${nodes[@]}"; do "$cluster" destroy "$n"; done
  rm -f "$envfile"
  ;;
env)
  cat "$envfile"
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
