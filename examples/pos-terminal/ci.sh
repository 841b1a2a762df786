#!/usr/bin/env bash
# The POS terminal firmware in CI: installs what is missing (qemu-system-arm from the distribution,
# the thumbv7m-none-eabi target through rustup), builds the firmware, runs its shift under QEMU,
# checks that no allocator is linked, compares the transcript with expected-transcript.txt, and
# checks the footprint budgets (footprint.sh). A linked allocator, a transcript difference, a
# non-zero exit of the firmware, a hang or a budget overrun fails the script.
#
#   bash examples/pos-terminal/ci.sh
#
# After an intended change of the transcript, review target/transcript.txt and copy it over
# expected-transcript.txt.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v qemu-system-arm >/dev/null 2>&1; then
  echo "== installing qemu-system-arm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! command -v readelf >/dev/null 2>&1; then
  echo "== installing binutils (readelf)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >/dev/null
fi
if ! rustup target list --installed | grep -qx thumbv7m-none-eabi; then
  echo "== installing the thumbv7m-none-eabi target"
  rustup target add thumbv7m-none-eabi
fi

echo "== building the firmware"
cargo build --release --locked

echo "== checking that no allocator is linked"
# The firmware declares no global allocator and uses no `alloc`, so a dependency that allocated
# would fail the link; the crate must be built without its heap-using features; and the symbol
# table must hold none of the allocator shims (with a heap, LTO leaves one of them there under
# its mangled name, such as `__rust_realloc`).
if cargo tree --locked -e features -i paystate | grep -E 'paystate feature "(alloc|rsa)"'; then
  echo "the crate is built with a feature that needs a heap (above)"
  exit 1
fi
if readelf -s -W target/thumbv7m-none-eabi/release/pos-terminal |
  grep -E '__rust_(alloc|dealloc|realloc|alloc_zeroed|alloc_error_handler|no_alloc_shim)|__rg_alloc|__rdl_alloc'; then
  echo "an allocator is linked into the firmware (symbols above)"
  exit 1
fi
echo "none: no heap feature, no allocator symbol"

echo "== running the shift under QEMU (lm3s6965evb)"
mkdir -p target
status=0
timeout 300 cargo run --release --locked -q >target/transcript.txt 2>target/firmware-stderr.txt || status=$?
if [ "$status" -ne 0 ]; then
  echo "the firmware exited with status $status; its stderr:"
  cat target/firmware-stderr.txt
  exit 1
fi

echo "== comparing the transcript with expected-transcript.txt"
if ! diff -u expected-transcript.txt target/transcript.txt; then
  echo "the transcript differs from expected-transcript.txt (see the diff above)"
  exit 1
fi
echo "transcript: $(wc -l <target/transcript.txt) lines, identical"

echo "== footprint"
bash footprint.sh
echo "pos-terminal: 1 passed, 0 failed"
