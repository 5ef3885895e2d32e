#!/usr/bin/env bash
# make test: install what is missing, build, install, then run every suite —
# pg_regress, isolation and TAP — against temporary clusters as the postgres
# user, and end with one line "N passed, N failed" counting every test.
#
# PG_MAJOR=16, 17 or 18 (make test PG_MAJOR=17) tests against that
# PostgreSQL, built once into a cache by scripts/pg_build.sh; the default is
# Debian's 15.  SUITES (default "regress isolation tap") picks the kinds of
# suite to run: .ci/run runs only the pg_regress suites on 16 and 17;
# "citus" is the Citus TAP file alone (make test-citus).  The TAP files
# include test/t/025_citus.pl, which runs when Citus is installed for that
# PostgreSQL (scripts/citus_build.sh) and says it is skipped otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
use_pg_major || { echo "0 passed, 1 failed"; exit 1; }
SUITES="${SUITES:-regress isolation tap}"
if ! build_and_install; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

WORK=$(scratch_copy)
passed=0
failed=0
skipped=0

# Count the passed and failed tests of pg_regress / pg_isolation_regress:
# "test x ... ok" / "... FAILED" up to 15, "ok 1 - x" / "not ok 1 - x" (TAP)
# from 16 on.  A run that fails without reporting any failed test counts as
# one failure.
OK_RE='(\.\.\. ok|^ok [0-9]+ )'
BAD_RE='(\.\.\. (FAILED|failed)|^not ok [0-9]+ )'
run_regress_kind() {
  local target=$1 log="$WORK/$1.log" rc ok bad
  echo "=== $target"
  as_postgres make -C "$WORK" -s PG_CONFIG="$PG_CONFIG" "$target" >"$log" 2>&1
  rc=$?
  grep -E "$OK_RE|$BAD_RE" "$log"
  ok=$(grep -cE "$OK_RE" "$log")
  bad=$(grep -cE "$BAD_RE" "$log")
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    bad=1
    tail -n 30 "$log"
  fi
  for d in "$WORK"/test/regression.diffs "$WORK"/test/output_iso/regression.diffs; do
    [ -s "$d" ] && [ "$bad" -gt 0 ] && head -n 200 "$d"
  done
  passed=$((passed + ok))
  failed=$((failed + bad))
}

# Each TAP file on its own, so that one failing file is counted as one;
# the files given, or every one.
run_tap() {
  local t rc files=("$@")
  echo "=== installcheck-tap"
  [ ${#files[@]} -gt 0 ] || files=("$WORK"/test/t/*.pl)
  for t in "${files[@]}"; do
    t=test/t/$(basename "$t")
    as_postgres make -C "$WORK" -s PG_CONFIG="$PG_CONFIG" installcheck-tap \
      PROVE_TESTS="$t" >"$WORK/tap.log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q 'skipped:' "$WORK/tap.log"; then
      # a tool missing for this PostgreSQL: say so, and count it apart
      echo "$t ... skipped: $(sed -n 's/.*skipped: //p' "$WORK/tap.log" | head -n 1)"
      skipped=$((skipped + 1))
    elif [ "$rc" -eq 0 ]; then
      echo "$t ... ok"
      passed=$((passed + 1))
    else
      echo "$t ... FAILED"
      tail -n 40 "$WORK/tap.log"
      for f in "$WORK"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && tail -n 40 "$f"
      done
      failed=$((failed + 1))
    fi
  done
}

start=$(date +%s)
# the house plan: no import circle between C files, none too long
echo "=== layers"
if bash scripts/layers.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
for kind in $SUITES; do
  case "$kind" in
    regress) run_regress_kind installcheck-regress ;;
    isolation) run_regress_kind installcheck-isolation ;;
    tap) run_tap ;;
    citus) run_tap "$WORK/test/t/025_citus.pl" ;;
    *) echo "unknown suite kind $kind"; failed=$((failed + 1)) ;;
  esac
done
echo "=== suites took $(( $(date +%s) - start ))s (PostgreSQL $PG_MAJOR)"

if [ "$failed" -eq 0 ]; then
  as_root rm -rf "$WORK"
else
  echo "test output kept in $WORK"
fi
[ "$skipped" -gt 0 ] && echo "${skipped} TAP files skipped on PostgreSQL $PG_MAJOR (each with its reason above)"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
