#!/usr/bin/env bash
# Measures the firmware's footprint and checks it against the budgets:
#   - the whole firmware (RSA2 verification on, heap-free):  flash <= 72 KiB, RAM <= 48 KiB
#     (RAM = .data + .bss + the stack's high-water mark; there is no heap);
#   - the same firmware built without RSA (feature `rsa` off);
#   - the engine alone: what the `engine` probe adds to the empty `baseline` firmware,
#     flash <= 16 KiB;
# and reports how many instructions one RSA2 verification takes (the `rsa-cycles` probe, run
# with QEMU's -icount so that its SysTick counts virtual time in instructions).
# Flash = .vector_table + .text + .rodata + .data (its load image), read from the ELF section
# headers with readelf. The stack's high-water mark comes from running the firmware under QEMU
# (it prints it to stderr). Exits non-zero if a budget is exceeded.
#
# Needs: cargo with the thumbv7m-none-eabi target, qemu-system-arm, readelf (binutils).
# ci.sh installs the first two; run it first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never

OUT=target/thumbv7m-none-eabi/release
MACHINE=(qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic
         -semihosting-config enable=on,target=native)
QEMU=("${MACHINE[@]}" -kernel)
FLASH_BUDGET=$((72 * 1024))
RAM_BUDGET=$((48 * 1024))
ENGINE_BUDGET=$((16 * 1024))

# section sizes of an ELF: prints "flash ram" in bytes
sizes() {
  local flash=0 ram=0 name size
  while read -r name size; do
    size=$((16#$size))
    case "$name" in
      .vector_table | .text | .rodata) flash=$((flash + size)) ;;
      .data) flash=$((flash + size)); ram=$((ram + size)) ;;
      .bss | .uninit) ram=$((ram + size)) ;;
    esac
  done < <(readelf -S -W "$1" | sed -nE 's/^ *\[ *[0-9]+\] +([^ ]+) +[^ ]+ +[0-9a-f]+ +[0-9a-f]+ +([0-9a-f]+) .*/\1 \2/p')
  echo "$flash $ram"
}

# runs an ELF under QEMU and prints its "footprint:" line's value of key $2
run_figure() {
  "${QEMU[@]}" "$1" 2>&1 >/dev/null | sed -n "s/.*footprint:.* $2=\([0-9]*\).*/\1/p"
}

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

status=0
check() { # check WHAT VALUE BUDGET
  if [ "$2" -le "$3" ]; then
    printf '  %-34s %7d bytes (%s)  <= %s  ok\n' "$1" "$2" "$(kib "$2")" "$(kib "$3")"
  else
    printf '  %-34s %7d bytes (%s)  >  %s  OVER BUDGET\n' "$1" "$2" "$(kib "$2")" "$(kib "$3")"
    status=1
  fi
}

echo "== building: engine probes, the firmware without RSA, the firmware"
cargo build --release --locked --no-default-features --features probes --bins
"${QEMU[@]}" "$OUT/engine" >/dev/null 2>&1 || { echo "the engine probe failed"; exit 1; }
read -r base_flash _ < <(sizes "$OUT/baseline")
read -r engine_flash engine_ram < <(sizes "$OUT/engine")
read -r norsa_flash norsa_ram < <(sizes "$OUT/pos-terminal")
norsa_stack=$(run_figure "$OUT/pos-terminal" stack_peak)
cargo build --release --locked
read -r full_flash full_ram < <(sizes "$OUT/pos-terminal")
full_stack=$(run_figure "$OUT/pos-terminal" stack_peak)
sector=$(run_figure "$OUT/pos-terminal" flash_sector)
verify=$(timeout 120 "${MACHINE[@]}" -icount shift=2 -kernel "$OUT/rsa-cycles" 2>/dev/null |
  sed -n 's/.*verify_instructions=\([0-9]*\).*/\1/p')

echo
echo "== the firmware (RSA2 verification on the device, no heap)"
echo "  flash: $full_flash bytes; static RAM (.data + .bss): $full_ram bytes, of which the simulated"
echo "  flash sector is $sector; stack peak $full_stack; no heap"
echo "  one RSA2 verification of an answer (verify_response, heap-free verifier): ${verify:-?} instructions (QEMU icount)"
[ -n "$verify" ] || { echo "  the rsa-cycles probe failed"; status=1; }
check "flash" "$full_flash" "$FLASH_BUDGET"
check "RAM (static + stack peak)" "$((full_ram + full_stack))" "$RAM_BUDGET"
echo
echo "== the firmware without RSA (--no-default-features)"
echo "  flash: $norsa_flash bytes; static RAM: $norsa_ram bytes; stack peak $norsa_stack"
check "flash" "$norsa_flash" "$FLASH_BUDGET"
check "RAM (static + stack peak)" "$((norsa_ram + norsa_stack))" "$RAM_BUDGET"
echo
echo "== the engine alone (the engine probe minus the empty baseline firmware)"
echo "  engine probe: $engine_flash bytes flash, $engine_ram bytes static RAM; baseline: $base_flash bytes flash"
check "flash added by the engine" "$((engine_flash - base_flash))" "$ENGINE_BUDGET"
exit "$status"
