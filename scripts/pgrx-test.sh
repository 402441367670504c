#!/usr/bin/env bash
# Runs the #[pg_test] tier. As root, PostgreSQL must run as the `postgres` OS user, so pgrx
# gets --runas postgres and a fresh data directory that user can reach.
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "$(id -u)" -ne 0 ]; then
  exec cargo pgrx test "pg$PG_MAJOR"
fi
data="$repo/target/pgrx-test-data"
if ! runuser -u postgres -- test -x "$repo/target" 2>/dev/null; then
  data="/tmp/skycat-pgrx-test-data"
fi
rm -rf "$data"
mkdir -p "$data"
chown postgres "$data"
exec cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$data"
