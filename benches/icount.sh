#!/usr/bin/env bash
# Instructions per call of every benchmark case, counted by callgrind (exact and reproducible,
# unlike wall-clock time on a shared machine), and each case's ratio to its baseline.
#
#   benches/icount.sh [FILTER]      # e.g. benches/icount.sh apply/
#
# Needs valgrind. Builds the `icount` bench in release mode, then runs each case ITERS times
# under callgrind, counting only inside `measured` (the state reset between calls is not
# counted), twice with different ITERS so that fixed costs cancel out.
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"
lo="${ICOUNT_LO:-200}"
hi="${ICOUNT_HI:-1200}"

# Every feature: the RSA2 backends behind `ring` and `rsa-fixed` have cases of their own.
bin=$(cargo bench -p paystate-benches --all-features --bench icount --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "icount.sh: could not build the icount bench" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() { # case iters -> instructions collected
  valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file="$out/cg" \
    "$bin" run "$1" "$2" >/dev/null 2>&1
  sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out/cg"
}

printf '%-44s %14s\n' case instructions/call
"$bin" list | grep -F -- "$filter" | while read -r case; do
  l=$lo h=$hi
  case "$case" in # RSA is ~10^6 instructions a call: fewer calls suffice
    alipay-*|rsa2-*) l=$((lo / 20 + 1)) h=$((hi / 20 + 1)) ;;
  esac
  a=$(count "$case" "$l")
  b=$(count "$case" "$h")
  awk -v c="$case" -v a="$a" -v b="$b" -v n=$((h - l)) \
    'BEGIN { printf "%-44s %14.1f\n", c, (b - a) / n }'
done | tee "$out/table"

# Ratios: every `<group>/paystate` (or `<group>/ours`) against each other entry of its group.
awk '
  { n = split($1, p, "/"); impl = p[n]; g = substr($1, 1, length($1) - length(impl) - 1);
    v[g, impl] = $2; if (!(g in seen)) { seen[g] = 1; order[++k] = g } impls[g] = impls[g] " " impl }
  END {
    print ""; printf "%-36s %-10s %s\n", "group", "baseline", "ours/baseline";
    for (i = 1; i <= k; i++) {
      g = order[i]; ours = ((g, "paystate") in v) ? "paystate" : "ours";
      if (!((g, ours) in v)) continue;
      m = split(impls[g], list, " ");
      for (j = 1; j <= m; j++) if (list[j] != ours && v[g, list[j]] > 0)
        printf "%-36s %-10s %6.2f\n", g, list[j], v[g, ours] / v[g, list[j]];
    }
  }' "$out/table"
