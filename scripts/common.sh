# Shared by scripts/test.sh and scripts/demo.sh: how to run things as root
# and as the postgres user, whether we are root or a user with sudo.
PG_MAJOR="${PG_MAJOR:-15}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"

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

# Build as the invoking user and install as root.
build_and_install() {
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
