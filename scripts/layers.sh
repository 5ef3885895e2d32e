#!/usr/bin/env bash
# The house plan of src/, checked on the built objects (make first):
#   - the import edges between C files (file A calls a symbol file B defines),
#   - no import circle between files (entry point -> engines -> shared
#     layers -> util*.c, never backwards),
#   - no C file over MAX_LINES lines (default 1,500).
# Prints "layers ... ok" or what is wrong, and exits non-zero on a problem.
# Usage: bash scripts/layers.sh [--edges]   (--edges also lists every edge)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_LINES=${MAX_LINES:-1500}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

missing=0
for c in src/*.c; do
  [ -f "${c%.c}.o" ] || { echo "layers: ${c%.c}.o is missing: build first"; missing=1; }
done
[ "$missing" -eq 0 ] || exit 1

: >"$tmp/def"; : >"$tmp/use"
for c in src/*.c; do
  o=${c%.c}.o; b=$(basename "$c" .c)
  nm --defined-only "$o" | awk -v b="$b" '$2 ~ /^[TDBR]$/ {print $3, b}' >>"$tmp/def"
  nm -u "$o" | awk -v b="$b" '{print $2, b}' >>"$tmp/use"
done
sort -u "$tmp/def" >"$tmp/d"; sort -u "$tmp/use" >"$tmp/u"
join "$tmp/u" "$tmp/d" | awk '$2 != $3 {print $2, $3}' | sort -u >"$tmp/edges"
[ "${1:-}" = "--edges" ] && sed 's/ / -> /' "$tmp/edges"

status=0
python3 - "$tmp/edges" <<'PY' || status=1
import sys, collections
g = collections.defaultdict(set)
for line in open(sys.argv[1]):
    a, b = line.split()
    g[a].add(b)
index, low, stack, on, found = {}, {}, [], set(), []
counter = [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in g[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            found.append(sorted(comp))
for v in list(g):
    if v not in index:
        visit(v)
for comp in found:
    print("layers: import circle between " + ", ".join(c + ".c" for c in comp))
sys.exit(1 if found else 0)
PY
while read -r n f; do
  [ "$f" = total ] && continue
  if [ "$n" -gt "$MAX_LINES" ]; then
    echo "layers: $f has $n lines (at most $MAX_LINES): split it along a seam"
    status=1
  fi
done < <(wc -l src/*.c)
[ "$status" -eq 0 ] && echo "layers ... ok"
exit "$status"
