#!/usr/bin/env bash
# Makes Citus (the distributed PostgreSQL extension skycat scales out on) available to the
# system PostgreSQL, skipping what is present:
#   1. an installed Citus (citus.so and citus.control in PostgreSQL's directories) is used as is;
#   2. else it is built from a release source tarball: CITUS_SOURCE (a citus-X.Y.Z.tar.gz, or a
#      directory holding one and optionally citus-X.Y.Z-pg*.patch files), default ../shared/vendor
#      next to the repository;
#   3. else it says how to get Citus and fails.
# Citus 13.2.x is the last line that supports PostgreSQL 15. The build needs the packages below
# and takes about ten minutes on two cores (the JIT bitcode is skipped: with_llvm=no).
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
repo=$(cd "$(dirname "$0")/.." && pwd)
CITUS_SOURCE=${CITUS_SOURCE:-$repo/../shared/vendor}
BUILD_DIR=${CITUS_BUILD_DIR:-$repo/target/citus-build}
# krb5: gssapi.h
BUILD_PACKAGES=("postgresql-server-dev-$PG_MAJOR" libzstd-dev liblz4-dev libkrb5-dev gcc make patch)

SAY_PREFIX=citus
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"

libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
if [ -f "$libdir/citus.so" ] && [ -f "$sharedir/extension/citus.control" ]; then
  say "Citus $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$sharedir/extension/citus.control") present in $libdir"
  exit 0
fi

tarball=
if [ -f "$CITUS_SOURCE" ]; then
  tarball=$CITUS_SOURCE
elif [ -d "$CITUS_SOURCE" ]; then
  tarball=$(ls "$CITUS_SOURCE"/citus-*.tar.gz 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$tarball" ]; then
  cat >&2 <<MSG
Citus is not installed for PostgreSQL $PG_MAJOR and no source tarball was found at
  $CITUS_SOURCE
Either install Citus from the Citus project's packages (https://docs.citusdata.com, package
postgresql-$PG_MAJOR-citus-13.2; 13.2 is the last line supporting PostgreSQL 15), or download the
release source (https://github.com/citusdata/citus/archive/refs/tags/v13.2.2.tar.gz) and run
  CITUS_SOURCE=/path/to/citus-13.2.2.tar.gz scripts/citus-setup.sh
MSG
  exit 1
fi

apt_ensure "Citus build packages" "${BUILD_PACKAGES[@]}"

name=$(basename "$tarball" .tar.gz)
say "building $name from $tarball (about ten minutes; log in $BUILD_DIR/build.log)"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
tar -xzf "$tarball" -C "$BUILD_DIR"
src="$BUILD_DIR/$name"
# Patches released next to the tarball for this PostgreSQL (e.g. Debian's 15.20 headers).
for p in "$(dirname "$tarball")/$name"-pg*.patch; do
  [ -f "$p" ] || continue
  say "applying $(basename "$p")"
  patch -s -p1 -d "$src" <"$p"
done
(
  cd "$src"
  ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl
  make -j"$(nproc)" with_llvm=no
) >"$BUILD_DIR/build.log" 2>&1 || { tail -30 "$BUILD_DIR/build.log" >&2; exit 1; }
as_root make -C "$src" install with_llvm=no >>"$BUILD_DIR/build.log" 2>&1 \
  || { tail -30 "$BUILD_DIR/build.log" >&2; exit 1; }
say "installed $name into $libdir"
