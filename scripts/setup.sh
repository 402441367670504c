#!/usr/bin/env bash
# Installs what building and testing skycat needs on Debian 12, skipping what is present:
#   apt:   PostgreSQL 15 (server, dev headers), clang/libclang (bindgen), sudo, q3c (baseline),
#          DejaVu fonts (skycat-ap latency plot), python3-venv
#   cargo: cargo-pgrx 0.16.1, then `cargo pgrx init` against the system PostgreSQL 15.
#   pip:   pyarrow in target/pyenv (the end-to-end tests read skycat's Parquet files with it).
# Used by `make test`, `make demo`, `make bench` and docker/Dockerfile alike.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PGRX_VERSION=0.16.1
APT_PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
  clang libclang-dev sudo pkg-config make fonts-dejavu-core python3-venv
  "postgresql-$PG_MAJOR-q3c"
)

SAY_PREFIX=setup
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

apt_ensure "apt packages" "${APT_PACKAGES[@]}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  say "cargo-pgrx $PGRX_VERSION present"
else
  say "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
if grep -q "^pg$PG_MAJOR *= *\"$PG_CONFIG\"" "$PGRX_HOME/config.toml" 2>/dev/null; then
  say "cargo pgrx already initialised for PostgreSQL $PG_MAJOR"
else
  say "cargo pgrx init --pg$PG_MAJOR=$PG_CONFIG"
  cargo pgrx init "--pg$PG_MAJOR=$PG_CONFIG"
fi

# An independent Parquet implementation for the end-to-end tests, pinned, in a private venv.
PYARROW_VERSION=26.0.1
PYENV=${PYENV:-$(dirname "$0")/../target/pyenv}
if "$PYENV/bin/python" -c "import pyarrow, sys; sys.exit(pyarrow.__version__ != '$PYARROW_VERSION')" 2>/dev/null; then
  say "pyarrow $PYARROW_VERSION present"
else
  say "installing pyarrow $PYARROW_VERSION into target/pyenv"
  python3 -m venv "$PYENV"
  "$PYENV/bin/pip" install -q --disable-pip-version-check "pyarrow==$PYARROW_VERSION"
fi
