#!/usr/bin/env bash
# Build PostgreSQL MAJOR (16, 17 or 18) from the source tarball in
# ../shared/postgres/ once, into a cache directory outside the checkout, and
# pg_cron 1.6.7 from ../shared/pg_cron/ into it.  Later runs find the build
# and return at once.  Prints the pg_config of the build on its last line.
#
#   bash scripts/pg_build.sh 17            # -> $ELT_PG_CACHE/pg17/bin/pg_config
#
# ELT_PG_CACHE: the cache (default /var/cache/elt_governance).  ELT_SHARED:
# where the tarballs are (default ../shared next to the checkout).  Needs the
# build dependencies scripts/setup.sh installs when PG_MAJOR is not 15.
# Runs as root (it installs into the cache); the build is readable by all.
set -euo pipefail
MAJOR="${1:?usage: pg_build.sh MAJOR (16, 17 or 18)}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${ELT_PG_CACHE:-/var/cache/elt_governance}"
SHARED="${ELT_SHARED:-$(cd "$HERE/.." && pwd)/shared}"
[ -d "$SHARED/postgres" ] || SHARED=/work/shared
PREFIX="$CACHE/pg$MAJOR"
TARBALL=$(ls "$SHARED"/postgres/postgresql-"$MAJOR".*.tar.xz 2>/dev/null | head -1 || true)
CRON_TARBALL=$(ls "$SHARED"/pg_cron/pg_cron-*.tar.xz 2>/dev/null | head -1 || true)

if [ -z "$TARBALL" ]; then
  echo "pg_build.sh: no postgresql-$MAJOR.*.tar.xz in $SHARED/postgres" >&2
  exit 1
fi
STAMP="$PREFIX/.built-from-$(basename "$TARBALL")"
if [ -f "$STAMP" ] && [ -x "$PREFIX/bin/pg_config" ]; then
  echo "$PREFIX/bin/pg_config"
  exit 0
fi

log() { echo "pg_build.sh: $*" >&2; }
# Called from make test (make -> scripts/test.sh -> here), the environment
# carries the outer make's MAKELEVEL and MAKEFLAGS.  PostgreSQL's top-level
# make generates its headers (utils/errcodes.h, the grammar) first only
# when MAKELEVEL is 0: inherited, a parallel build compiles before they
# exist and fails.  The build is a make of its own.
unset MAKELEVEL MAKEFLAGS MFLAGS
SRC="$CACHE/src/pg$MAJOR"
rm -rf "$SRC" "$PREFIX"
mkdir -p "$SRC" "$PREFIX"
log "building $(basename "$TARBALL") into $PREFIX (6-10 minutes on 2 cores)"
tar -xJf "$TARBALL" -C "$SRC" --strip-components=1
( cd "$SRC" &&
  ./configure --prefix="$PREFIX" --without-icu --with-openssl --enable-tap-tests \
      --enable-debug CFLAGS="-O2" >"$SRC/configure.log" 2>&1 &&
  make -s -j"$(nproc)" >"$SRC/make.log" 2>&1 &&
  make -s install >>"$SRC/make.log" 2>&1 &&
  make -s -C contrib -j"$(nproc)" install >>"$SRC/make.log" 2>&1 &&
  make -s -C src/test/isolation install >>"$SRC/make.log" 2>&1 &&
  make -s -C src/test/perl install >>"$SRC/make.log" 2>&1 ) || {
  log "the build failed; see $SRC/configure.log and $SRC/make.log"
  exit 1
}
if [ -n "$CRON_TARBALL" ]; then
  log "building $(basename "$CRON_TARBALL") for PostgreSQL $MAJOR"
  mkdir -p "$CACHE/src/pg_cron-pg$MAJOR"
  tar -xJf "$CRON_TARBALL" -C "$CACHE/src/pg_cron-pg$MAJOR" --strip-components=1
  make -s -C "$CACHE/src/pg_cron-pg$MAJOR" PG_CONFIG="$PREFIX/bin/pg_config" >/dev/null 2>&1 &&
  make -s -C "$CACHE/src/pg_cron-pg$MAJOR" PG_CONFIG="$PREFIX/bin/pg_config" install >/dev/null 2>&1 || {
    log "pg_cron did not build for PostgreSQL $MAJOR"
    exit 1
  }
fi
chmod -R a+rX "$PREFIX"
touch "$STAMP"
echo "$PREFIX/bin/pg_config"
