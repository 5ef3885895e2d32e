#!/usr/bin/env bash
# Install, idempotently, every Debian package that building, testing and
# demonstrating elt_governance needs.  Safe to run again: packages already
# present are left alone and apt is not touched at all when nothing is missing.
#
# Runs as root, or as a user with sudo.  PG_MAJOR selects the server version
# (default 15, the version this project is built and tested against).
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
# Debian's PostgreSQL 15 is always installed: make test without PG_MAJOR
# uses it, and the pg_upgrade test (test/t/020_pg_upgrade.pl) starts there.
PACKAGES=(
  make gcc
  postgresql-15
  postgresql-server-dev-15
  postgresql-15-cron
  libssl-dev
  libipc-run-perl
  python3 python3-jsonschema python3-rfc3987
  # the tools warehouses run next to us, which the TAP tests run for real
  postgresql-15-partman
  postgresql-15-repack
  sqitch
  python3-alembic python3-psycopg2
)
# PostgreSQL 16 to 18 are built from source by scripts/pg_build.sh (pg_cron
# with them); pg_partman and pg_repack exist here only for 15, and their
# tests say they are skipped on the others.
if [ "$PG_MAJOR" != 15 ]; then
  PACKAGES+=(bison flex libreadline-dev zlib1g-dev pkg-config xz-utils)
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup.sh: run as root or as a user with sudo" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all packages present"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# Debian's postgresql-common would create and start a "main" cluster on
# install; the tests and the demo use throwaway clusters of their own.
if [ ! -e /etc/postgresql-common/createcluster.conf ] || \
   ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf; then
  "${SUDO[@]}" mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' | "${SUDO[@]}" tee -a /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}"
echo "setup.sh: done"
