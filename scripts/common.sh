# Shared by scripts/test.sh and scripts/demo.sh: how to run things as root
# and as the postgres user, whether we are root or a user with sudo, and
# which PostgreSQL to build against.
#
# PG_MAJOR 15 (the default) is Debian's PostgreSQL; 16, 17 and 18 are built
# from the tarballs in ../shared/postgres once, into a cache outside the
# checkout (scripts/pg_build.sh), by use_pg_major.
PG_MAJOR="${PG_MAJOR:-15}"
ELT_PG_CONFIG_GIVEN="${PG_CONFIG:+yes}"
if [ "$PG_MAJOR" = 15 ]; then
  PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
else
  PG_CONFIG="${PG_CONFIG:-${ELT_PG_CACHE:-/var/cache/elt_governance}/pg${PG_MAJOR}/bin/pg_config}"
fi
PG_BIN="$(dirname "$PG_CONFIG")"

# Make sure PG_CONFIG exists: for 16 to 18, build that PostgreSQL (and
# pg_cron for it) the first time; later runs reuse the build.
use_pg_major() {
  case "$PG_MAJOR" in
    15) ;;
    16|17|18)
      if [ -z "${ELT_PG_CONFIG_GIVEN:-}" ]; then
        PG_CONFIG=$(as_root bash scripts/pg_build.sh "$PG_MAJOR" | tail -n 1) || return 1
        PG_BIN="$(dirname "$PG_CONFIG")"
      fi ;;
    *) echo "PG_MAJOR must be 15, 16, 17 or 18 (not $PG_MAJOR)" >&2; return 1 ;;
  esac
  [ -x "$PG_CONFIG" ] || { echo "no pg_config at $PG_CONFIG" >&2; return 1; }
  echo "=== PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //') ($PG_CONFIG)"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then
    "$@"
  else
    sudo -u postgres -- "$@"
  fi
}

# Build as the invoking user and install as root.  Objects built against
# another PostgreSQL (another PG_MAJOR) are removed first.
build_and_install() {
  if [ "$(cat .built-with 2>/dev/null)" != "$PG_CONFIG" ]; then
    make -s PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
    echo "$PG_CONFIG" > .built-with
  fi
  make -s PG_CONFIG="$PG_CONFIG" >/dev/null
  as_root make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# A scratch copy of what the suites need, owned by postgres (initdb and the
# test clusters refuse to run as root, and postgres may not read our tree).
scratch_copy() {
  local dir
  dir=$(mktemp -d /tmp/elt_governance.XXXXXX)
  cp -a Makefile elt_governance.control README.md CHANGELOG.md docs sql test scripts "$dir"/
  mkdir "$dir/bench" && cp -a bench/README.md "$dir/bench/"   # the docs test reads them
  as_root chown -R postgres: "$dir"
  echo "$dir"
}

# Start a throwaway cluster with the library preloaded, in a scratch copy
# ($WORK), listening only on a Unix socket in $WORK on port $1; it is
# stopped and removed when the calling script exits.
start_throwaway_cluster() {
  local port=$1
  WORK=$(scratch_copy)
  trap stop_throwaway_cluster EXIT
  as_postgres "$PG_BIN/initdb" -D "$WORK/data" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_postgres sh -c "cat >> '$WORK/data/postgresql.conf'" <<CONF
shared_preload_libraries = 'elt_governance'
port = $port
listen_addresses = ''
unix_socket_directories = '$WORK'
CONF
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
}

stop_throwaway_cluster() {
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  as_root rm -rf "$WORK"
}
