#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after the other, and fails on the first crash.
#
#   fuzz/run-all.sh                 # 30 s per target
#   FUZZ_SECONDS=600 fuzz/run-all.sh
#   fuzz/run-all.sh engine money_parse   # only these targets
#
# Each run starts from the committed seeds in fuzz/corpus/<target>/ but writes what it finds
# to a scratch directory, so the committed corpus only changes when someone adds to it on
# purpose. A crash leaves its input in fuzz/artifacts/<target>/ (see docs/fuzzing.md).
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
case "$seconds" in
'' | *[!0-9]* | 0)
    echo "FUZZ_SECONDS must be a positive whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 2
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Build every target first so a compile error fails fast and the runs measure fuzzing only.
cargo +nightly fuzz build

for target in "${targets[@]}"; do
    seeds="fuzz/corpus/$target"
    mkdir -p "$scratch/$target"
    corpus=("$scratch/$target")
    if [ -d "$seeds" ]; then
        corpus+=("$seeds")
    fi
    echo "=== $target: ${seconds}s" >&2
    # A crash, a leak, a timeout (an input running over 20 s) or running out of memory all
    # exit non-zero, and `set -e` stops here with it.
    cargo +nightly fuzz run "$target" "${corpus[@]}" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1
done
echo "all ${#targets[@]} targets ran ${seconds}s each without a crash" >&2
