#!/usr/bin/env bash
# Everything CI checks, in the order it checks it; CI runs this script (through .ci/run).
# Run it locally before pushing, from anywhere in the repository:
#   ./ci.sh
# It installs what it needs itself (rustup components and targets, cargo tools). The POS
# terminal step needs qemu-system-arm, the fuzzing step a nightly toolchain (installed here).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never

steps=0
step() { steps=$((steps + 1)); printf '\n=== %s\n' "$*"; }
need_tool() { # need_tool BINARY CRATE
  command -v "$1" >/dev/null 2>&1 || cargo install --locked "$2"
}

step "toolchain: components and targets"
rustup component add rustfmt clippy >/dev/null
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi >/dev/null

step "format"
cargo fmt --all --check

step "clippy, all targets and features, warnings denied"
cargo clippy --all-targets --all-features -- -D warnings

step "tests (the README's test command)"
cargo test --all-features

step "tests without default features"
cargo test --no-default-features

step "no_std, no alloc: bare-metal builds, the engine alone and with the heap-free RSA2 verifier"
for target in thumbv7em-none-eabihf thumbv6m-none-eabi; do
  RUSTFLAGS="-D warnings" cargo build -p paystate --lib --no-default-features --target "$target"
  RUSTFLAGS="-D warnings" cargo build -p paystate --lib --no-default-features --features rsa-fixed \
    --target "$target"
done

# Once per feature (heapless's habit) instead of the whole powerset, which took about 20
# minutes. `--each-feature` runs all features, no default features, and every feature alone on
# top of no defaults (`default` included; `rsa-fixed` alone is the firmware build): 13 runs,
# about a minute once the earlier steps have built the dependencies. A feature's `needs` are
# enabled with it, so the chains between features are covered too.
step "each feature on its own, and the combinations that matter, warnings denied"
need_tool cargo-hack cargo-hack
cargo hack --package paystate --each-feature --no-dev-deps clippy --lib -- -D warnings

step "docs, warnings denied"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

step "the README's first command, and the driver on its committed transcript"
cargo run -q --example checkout > target/checkout.out
for line in "verified TRADE_SUCCESS notification          → applied" \
            "the same notification, redelivered           → duplicate" \
            "reply to Alipay: fail" "effect: refund 99.99 CNY to the customer"; do
  grep -qF "$line" target/checkout.out || { echo "checkout: missing '$line'"; exit 1; }
done
# The transcript ends with malformed lines on purpose: the driver must answer them and exit 2.
rc=0
cargo run -q --example replay < tests/data/replay/design_example.jsonl > target/replay.out || rc=$?
[ "$rc" -eq 2 ] || { echo "replay exited $rc, expected 2"; exit 1; }
diff -u tests/data/replay/design_example.expected.jsonl target/replay.out

step "the server (examples/server): clippy, warnings denied"
cargo clippy -p paystate-server --all-targets -- -D warnings

step "the server's tests on SQLite"
env -u PAYSTATE_TEST_DATABASE cargo test -p paystate-server

step "the server's tests on PostgreSQL (a scratch cluster, installed and started here)"
eval "$(examples/server/scripts/pg-scratch.sh start)"
trap 'examples/server/scripts/pg-scratch.sh stop' EXIT
cargo test -p paystate-server
examples/server/scripts/pg-scratch.sh stop
trap - EXIT

step "the server's load generator, once and small (a smoke run; the figures are in docs/server-figures.md)"
cargo run -q -p paystate-server --bin paystate-load -- notify --payments 200 --warmup 20 --runs 1 \
  > target/load.out
grep -q 'notifications/s' target/load.out || { cat target/load.out; exit 1; }

step "the server's demo, as the README runs it, playing the buyer"
cargo run -q --manifest-path examples/server/Cargo.toml -- demo --auto-pay \
  --listen 127.0.0.1:0 --sim-listen 127.0.0.1:0 > target/demo.out
grep -q ': succeeded (paid 99.99 CNY)' target/demo.out || { cat target/demo.out; exit 1; }

step "benchmarks (the workspace member benches/): each runs once, in criterion's test mode"
cargo bench --all-features -- --test

step "POS terminal firmware under QEMU: transcript and footprint budgets"
bash examples/pos-terminal/ci.sh

step "fuzzing: every target for a bounded time (nightly)"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash fuzz/run-all.sh

printf '\nci: %d passed, 0 failed\n' "$((steps))"
