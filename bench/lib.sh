# Shared by every bench/*.sh: the preamble, the throwaway cluster and its
# exit trap, psql and file helpers, timing and the lines every report starts
# and ends with.  A benchmark sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# It turns on `set -euo pipefail`, moves to the top of the checkout, sources
# scripts/common.sh (as_root, as_postgres, start_throwaway_cluster, ...) and
# takes the server binaries from $PG_CONFIG (the default, the system's
# PostgreSQL 15, gives /usr/lib/postgresql/15/bin as before; a private copy
# gives its own).  What a benchmark measures stays in the benchmark.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/common.sh
PG_BIN="$("$PG_CONFIG" --bindir)"

# the benchmark's name, for log lines and messages: backfill, lineage, ...
BENCH_NAME="$(basename "$0" .sh)"
T_START=$(date +%s)

log() { echo "[$BENCH_NAME] $*" >&2; }

# bench_require_installed VERSION UPGRADE: refuse to run unless the installed
# build has at least VERSION (the upgrade script UPGRADE, "0.2.0--0.3.0",
# appeared with it); then remember the library the cluster will preload, so
# that bench_check_library can tell whether it was reinstalled during the run.
bench_require_installed() {
  if ! [ -f "$("$PG_CONFIG" --sharedir)/extension/elt_governance--$2.sql" ]; then
    echo "$BENCH_NAME.sh: elt_governance $1 is not installed (make install)" >&2
    exit 1
  fi
  SO="$("$PG_CONFIG" --pkglibdir)/elt_governance.so"
  SO_SUM=$(md5sum <"$SO")
}

# bench_start_cluster PORT: a throwaway cluster with the library preloaded
# (scripts/common.sh), stopped and removed when the script exits; on failure
# the end of the server log is shown first.  A benchmark that starts
# processes of its own defines bench_before_stop to end them.
bench_start_cluster() {
  start_throwaway_cluster "$1"
  trap bench_on_exit EXIT
}
bench_on_exit() {
  local rc=$?
  if declare -F bench_before_stop >/dev/null; then bench_before_stop || true; fi
  if [ "$rc" -ne 0 ] && as_postgres test -f "$WORK/server.log"; then
    echo "--- last 40 lines of the server log ---" >&2
    as_postgres tail -n 40 "$WORK/server.log" >&2 || true
  fi
  stop_throwaway_cluster
}

# bench_configure: append stdin to the cluster's postgresql.conf and restart
# it (`bench_configure norestart` only appends).
bench_configure() {
  as_postgres sh -c "cat >> '$WORK/data/postgresql.conf'"
  if [ "${1:-}" != norestart ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w restart >/dev/null
  fi
}

# psql on the throwaway cluster: unaligned, quiet, stop on the first error
psql_db() { local db=$1; shift; as_postgres "$PG_BIN/psql" -h "$WORK" -p "$PORT" -d "$db" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
psql_q() { psql_db bench "$@"; }
# write stdin to the file $1 of $WORK (readable by postgres)
put() { as_postgres sh -c "cat > '$WORK/$1'"; }

# timing
now_s() { date +%s.%N; }
now_ns() { date +%s%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }
# run the statements (psql -c arguments), print the \timing of the last one in ms
timed_ms() { psql_q -c '\timing on' "$@" | grep -o 'Time: [0-9.]* ms' | tail -n 1 | awk '{print $2}'; }
# median of numbers separated by spaces or newlines, one decimal; "-" for none
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# report lines
# "(installed build, <date>, md5 <sum>)": which library ran
bench_build() { echo "(installed build, $(stat -c %y "$SO" | cut -d. -f1), md5 ${SO_SUM%% *})"; }
bench_tree() { echo "# tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src sql 2>/dev/null || echo ' with uncommitted changes in src/ or sql/')"; }
bench_machine() { echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $(. /etc/os-release && echo "$PRETTY_NAME")"; }
bench_load_start() { echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"; }
bench_load_end() { echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC'); total $(( $(date +%s) - T_START )) s"; }
# warn when the library was reinstalled while the benchmark ran
bench_check_library() {
  if [ "$(md5sum <"$SO")" != "$SO_SUM" ]; then
    echo "# WARNING: $SO was reinstalled during the run; the server kept the build it loaded at start (md5 above), but new backends may mix builds. Run under flock -s /tmp/elt-install.lock."
    log "WARNING: $SO was reinstalled during the run"
  fi
}
