#!/usr/bin/env bash
# Build Citus 13.2.2 from the tarball in ../shared/citus/ once, into a cache
# directory outside the checkout, and install it into one PostgreSQL (15, 16
# or 17: the versions Citus 13 supports).  Later runs find the same build
# already installed and return at once.  Prints the pg_config it installed
# into on its last line.
#
#   bash scripts/citus_build.sh                    # PostgreSQL of PG_MAJOR
#   PG_CONFIG=/path/to/pg_config bash scripts/citus_build.sh
#
# PG_CONFIG: the PostgreSQL to build against and install into (default: the
# one scripts/common.sh picks for PG_MAJOR, built by scripts/pg_build.sh for
# 16 and 17).  ELT_PG_CACHE: the cache (default /var/cache/elt_governance);
# the source is unpacked into $ELT_PG_CACHE/src/citus-13.2.2-pg<major>.
# ELT_SHARED: where the tarball is (default ../shared next to the checkout).
# Runs as root, or re-runs itself with sudo (it installs Debian packages
# and writes into the cache and the PostgreSQL installation).
#
# Citus 13.2.2 as released does not compile against PostgreSQL 15.20's
# headers: src/include/pg_version_compat.h defines a static
# have_createdb_privilege() for PostgreSQL < 16, which 15.20 now declares in
# commands/dbcommands.h.  Where the server headers declare it, the static
# definition is replaced by that header.  PostgreSQL 16 and later take the
# other branch of that file and need nothing.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=PG_MAJOR,PG_CONFIG,ELT_PG_CACHE,ELT_SHARED bash "$0" "$@"
fi
HERE="$(cd "$(dirname "$0")/.." && pwd)"
cd "$HERE"
. scripts/common.sh

CITUS_VERSION=13.2.2
CACHE="${ELT_PG_CACHE:-/var/cache/elt_governance}"
SHARED="${ELT_SHARED:-$(cd "$HERE/.." && pwd)/shared}"
[ -d "$SHARED/citus" ] || SHARED=/work/shared
TARBALL="$SHARED/citus/citus-$CITUS_VERSION.tar.xz"
SUMS="$SHARED/citus/SHA256SUMS"
log() { echo "citus_build.sh: $*" >&2; }
# make test-citus calls this from make: the build is a make of its own, not
# a sub-make of that one (see scripts/pg_build.sh).
unset MAKELEVEL MAKEFLAGS MFLAGS

# the PostgreSQL of PG_MAJOR, with what building against it needs
if [ -z "${ELT_PG_CONFIG_GIVEN:-}" ]; then
  bash scripts/setup.sh >&2 || exit 1
  use_pg_major >&2 || exit 1
fi
[ -x "$PG_CONFIG" ] || { log "no pg_config at $PG_CONFIG"; exit 1; }
MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
case "$MAJOR" in
  15|16|17) ;;
  *) log "Citus $CITUS_VERSION supports PostgreSQL 15 to 17, not $MAJOR"; exit 1 ;;
esac
[ -f "$TARBALL" ] || { log "no $TARBALL"; exit 1; }

# The same tarball, built against the same PostgreSQL, and its files still
# in that installation: nothing to do.
PKGLIB=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
SRC="$CACHE/src/citus-$CITUS_VERSION-pg$MAJOR"
SUM=$(sha256sum "$TARBALL" | cut -d' ' -f1)
WANT="citus $CITUS_VERSION $SUM $PG_CONFIG $("$PG_CONFIG" --version)"
STAMP="$SRC/.installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
   [ -f "$PKGLIB/citus.so" ] && [ -f "$SHAREDIR/extension/citus.control" ]; then
  echo "$PG_CONFIG"
  exit 0
fi

if [ -f "$SUMS" ]; then
  grep -q "^$SUM  citus-$CITUS_VERSION.tar.xz\$" "$SUMS" || {
    log "$TARBALL does not match $SUMS"
    exit 1
  }
else
  log "no $SUMS to verify $TARBALL against"
  exit 1
fi

# Debian packages Citus's configure asks for, besides the server headers
# (which come with the PostgreSQL being built against).
PACKAGES=(make gcc perl xz-utils libkrb5-dev libcurl4-openssl-dev liblz4-dev
          libzstd-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

log "building Citus $CITUS_VERSION for $("$PG_CONFIG" --version) into $SRC (1-2 minutes on 2 cores)"
rm -rf "$SRC"
mkdir -p "$SRC"
tar -xJf "$TARBALL" -C "$SRC" --strip-components=1
COMPAT="$SRC/src/include/pg_version_compat.h"
DBCOMMANDS="$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h"
if [ "$MAJOR" -lt 16 ] && grep -q 'have_createdb_privilege' "$DBCOMMANDS"; then
  log "$DBCOMMANDS declares have_createdb_privilege(): using it in $COMPAT"
  # the static definition (the #else branch, PostgreSQL < 16) becomes an
  # #include of the header that declares the server's own function
  perl -0pi -e \
    's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n/#include "commands\/dbcommands.h"\n/s' \
    "$COMPAT"
  grep -q '^#include "commands/dbcommands.h"' "$COMPAT" || {
    log "could not patch have_createdb_privilege() in $COMPAT"
    exit 1
  }
fi
( cd "$SRC" &&
  ./configure PG_CONFIG="$PG_CONFIG" >"$SRC/configure.log" 2>&1 &&
  make -s -j"$(nproc)" >"$SRC/make.log" 2>&1 &&
  make -s install >>"$SRC/make.log" 2>&1 ) || {
  log "the build failed; see $SRC/configure.log and $SRC/make.log"
  exit 1
}
echo "$WANT" | tee "$STAMP" >/dev/null
log "installed citus.so into $PKGLIB"
echo "$PG_CONFIG"
