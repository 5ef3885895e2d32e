#!/usr/bin/env bash
# make test: install what is missing, build, install, then run every suite —
# pg_regress, isolation and TAP — against temporary clusters as the postgres
# user, and end with one line "N passed, N failed" counting every test.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
if ! build_and_install; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

WORK=$(scratch_copy)
passed=0
failed=0

# Count "... ok" and "... FAILED" lines of pg_regress / pg_isolation_regress;
# a run that fails without reporting any failed test counts as one failure.
run_regress_kind() {
  local target=$1 log="$WORK/$1.log" rc ok bad
  echo "=== $target"
  as_postgres make -C "$WORK" -s PG_CONFIG="$PG_CONFIG" "$target" >"$log" 2>&1
  rc=$?
  grep -E '\.\.\. (ok|FAILED|failed)' "$log"
  ok=$(grep -cE '\.\.\. ok' "$log")
  bad=$(grep -cE '\.\.\. (FAILED|failed)' "$log")
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

# Each TAP file on its own, so that one failing file is counted as one.
run_tap() {
  local t rc
  echo "=== installcheck-tap"
  for t in "$WORK"/test/t/*.pl; do
    t=test/t/$(basename "$t")
    as_postgres make -C "$WORK" -s PG_CONFIG="$PG_CONFIG" installcheck-tap \
      PROVE_TESTS="$t" >"$WORK/tap.log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
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
run_regress_kind installcheck-regress
run_regress_kind installcheck-isolation
run_tap
echo "=== suites took $(( $(date +%s) - start ))s"

if [ "$failed" -eq 0 ]; then
  as_root rm -rf "$WORK"
else
  echo "test output kept in $WORK"
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
