#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the demo and the tests.
#
#   scripts/pg-cluster.sh start NAME   initialise (if needed) and start; prints its env file
#   scripts/pg-cluster.sh stop NAME    stop it (the data stays until `destroy`)
#   scripts/pg-cluster.sh destroy NAME stop and delete it
#   scripts/pg-cluster.sh env NAME     print the env file (PGHOST, PGPORT, PGUSER, PGDATABASE)
#
# The cluster lives in target/clusters/NAME (or /tmp when the postgres user cannot reach the
# repository), listens only on a Unix socket in that directory and on localhost at a free
# port, and is owned by the `postgres` OS user when run as root (initdb refuses root).
# PG_EXTRA_OPTS adds server options at start (scripts/citus-cluster.sh preloads Citus with it).
set -euo pipefail

cmd=${1:?usage: pg-cluster.sh start|stop|destroy|env NAME}
name=${2:?usage: pg-cluster.sh start|stop|destroy|env NAME}
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
  os_user=postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  os_user=$(id -un)
  as_pg() { "$@"; }
fi

# Where the cluster lives: in the repository when the cluster's owner can write there.
pick_dir() {
  local d="$repo/target/clusters/$name"
  mkdir -p "$d"
  [ "$(id -u)" -eq 0 ] && chown "$os_user" "$d"
  if as_pg test -w "$d" -a -x "$d"; then
    echo "$d"
  else
    d="/tmp/skycat-clusters-$(id -u)/$name"
    mkdir -p "$d"
    [ "$(id -u)" -eq 0 ] && chown "$os_user" "$d" && chmod 755 "$(dirname "$d")"
    echo "$d"
  fi
}

dir_file="$repo/target/clusters/$name.dir"
if [ -f "$dir_file" ]; then dir=$(cat "$dir_file"); else mkdir -p "$repo/target/clusters"; dir=$(pick_dir); echo "$dir" >"$dir_file"; fi
data="$dir/data"
envfile="$repo/target/clusters/$name.env"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "$cmd" in
start)
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    cat "$envfile"
    exit 0
  fi
  port=${PGPORT_WANTED:-54329}
  while ! port_free "$port"; do port=$((port + 1)); done
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=localhost -c unix_socket_directories='$dir' -c max_worker_processes=8 -c max_parallel_workers_per_gather=2 ${PG_EXTRA_OPTS:-}" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
  cat >"$envfile" <<ENV
export PGHOST=$dir
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
ENV
  cat "$envfile"
  ;;
stop)
  if [ -f "$data/PG_VERSION" ]; then as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true; fi
  ;;
destroy)
  if [ -f "$data/PG_VERSION" ]; then as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir" "$dir_file" "$envfile"
  ;;
env)
  cat "$envfile"
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
