#!/usr/bin/env bash
# Builds the Debian package postgresql-<major>-skycat from `cargo pgrx package`'s install tree,
# with the upgrade scripts generated into it (scripts/sql-upgrade.py), and checks it:
#
#   scripts/package.sh [PG_CONFIG]   -> target/packages/postgresql-15-skycat_<version>_<arch>.deb
#
# The package installs what `make install` installs, at Debian's PostgreSQL paths, and
# depends on that PostgreSQL major version.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
PG_CONFIG=${1:-${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}}
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
# PGXN's META.json names the same version.
meta=$(python3 -c 'import json; m = json.load(open("META.json")); print(m["version"], m["provides"]["skycat"]["version"])')
[ "$meta" = "$version $version" ] || { echo "package.sh: META.json says $meta, Cargo.toml $version" >&2; exit 1; }
name="postgresql-$major-skycat"

cargo pgrx package --pg-config "$PG_CONFIG"
tree="target/release/skycat-pg$major"
extdir="$tree$("$PG_CONFIG" --sharedir)/extension"
python3 scripts/sql-upgrade.py "$extdir"

root="target/packages/$name"
rm -rf "$root"
mkdir -p "$root"
cp -r "$tree"/. "$root"/
mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: skycat developers <skycat@example.org>
Depends: postgresql-$major
Installed-Size: $size
Section: database
Priority: optional
Homepage: https://github.com/skycat/skycat
Description: sky-survey catalog work as plain SQL for PostgreSQL $major
 skycat is a PostgreSQL extension for astronomical survey catalogs: exact and
 index-assisted cross-match, declination stripes and Qserv chunks, H3 and HEALPix
 covers, photometric and astrometric calibration, light-curve aggregates, a
 Parquet/Arrow foreign-data wrapper, and the nightly Association Pipeline and data
 release post-processing as SQL procedures. CREATE EXTENSION skycat;
CONTROL
deb="target/packages/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null

# The package is what it should be: its metadata, and every file an installation needs at
# the paths PostgreSQL reads (the library, the control file, this version's install script,
# the upgrade scripts from earlier releases).
dpkg-deb --field "$deb" Package Version Depends | grep -q "Depends: postgresql-$major"
contents=$(dpkg-deb --contents "$deb")
ext="$("$PG_CONFIG" --sharedir)/extension"
wanted=("$("$PG_CONFIG" --pkglibdir)/skycat.so" "$ext/skycat.control" "$ext/skycat--$version.sql")
for u in sql/upgrades/*--*.sql; do wanted+=("$ext/skycat--$(basename "$u")"); done
for f in "${wanted[@]}"; do
  grep -q " \.$f\$" <<<"$contents" || { echo "package.sh: $deb lacks $f" >&2; exit 1; }
done
# dpkg's own checks of the package against this system (dependencies, conflicts), writing
# nothing: as root only.
if [ "$(id -u)" -eq 0 ]; then
  dpkg --no-act --install "$deb" >/dev/null
fi
echo "$deb"
