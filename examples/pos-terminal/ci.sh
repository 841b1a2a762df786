#!/usr/bin/env bash
# The POS terminal firmware in CI: installs what is missing (qemu-system-arm from the distribution,
# the thumbv7m-none-eabi target through rustup), builds the firmware, runs its shift under QEMU,
# compares the transcript with expected-transcript.txt, and checks the footprint budgets
# (footprint.sh). A transcript difference, a non-zero exit of the firmware, a hang or a budget
# overrun fails the script.
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
