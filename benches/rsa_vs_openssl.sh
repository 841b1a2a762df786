#!/usr/bin/env bash
# RSA2 verification (2048-bit, SHA256withRSA) per backend, against `ring` measured in the same
# criterion run and against OpenSSL's `openssl speed -seconds 3 rsa2048` verify figure taken on
# the same machine right after. Prints one Markdown table of ratios (ours / baseline).
#
#   benches/rsa_vs_openssl.sh               # full `cargo bench` of the RSA groups, then OpenSSL
#   SKIP_BENCH=1 benches/rsa_vs_openssl.sh  # reuse the last criterion results under target/
#   ICOUNT=1 benches/rsa_vs_openssl.sh      # also instructions per verify, ours and OpenSSL's
#
# The criterion figures are medians over the real signed content of Alipay's V1 vector (680
# bytes, hashed inside each call); `openssl speed` verifies a 36-byte buffer, so its figure is
# the RSA operation and padding check alone: OpenSSL's ratio slightly favours OpenSSL.
#
# `openssl speed` divides by the process's CPU time unless given `-elapsed`; criterion measures
# wall-clock time. On a machine shared with other work the two differ, so both OpenSSL figures
# are taken and both ratios printed: against `-elapsed` (the same clock as criterion's) and
# against the plain command.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v openssl >/dev/null || { echo "needs the openssl command-line tool" >&2; exit 2; }

if [ -z "${SKIP_BENCH:-}" ]; then
    cargo bench -p paystate-benches --all-features --bench signature -- 'rsa2-verify|alipay-notify-v1'
fi

mkdir -p target
openssl speed -seconds 3 rsa2048 >target/openssl-speed-rsa2048.txt 2>/dev/null
openssl speed -elapsed -seconds 3 rsa2048 >target/openssl-speed-rsa2048-elapsed.txt 2>/dev/null
openssl version >target/openssl-version.txt

python3 - target <<'EOF'
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
version = (root / "openssl-version.txt").read_text().strip()


def verify_ns(name):
    """The verify time of `openssl speed`'s rsa2048 row: "rsa 2048 bits 0.000597s 0.000018s ..."."""
    lines = (root / name).read_text().splitlines()
    row = next(l.split() for l in lines if l.startswith("rsa") and "2048 bits" in l)
    times = [t for t in row if t.endswith("s") and t != "bits"]
    return float(times[1].rstrip("s")) * 1e9


openssl_ns = verify_ns("openssl-speed-rsa2048-elapsed.txt")
openssl_cpu_ns = verify_ns("openssl-speed-rsa2048.txt")


def median(group, function):
    path = root / "criterion" / group / function / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


rows = [
    ("`rsa` crate (default backend)", "rsa2-verify", "paystate"),
    ("`ring` backend", "rsa2-verify-ring-backend", "paystate"),
    ("heap-free `rsa-fixed` backend", "rsa2-verify-fixed-backend", "paystate"),
    ("Alipay notification end to end, `ring` backend", "alipay-notify-v1-ring-backend", "paystate"),
]
print(
    f"{version}: `openssl speed -seconds 3 rsa2048` verify {openssl_cpu_ns / 1e3:.1f} µs "
    f"(CPU time), with `-elapsed` {openssl_ns / 1e3:.1f} µs (wall-clock)\n"
)
print("| what | ours | `ring`, same run | ours / `ring` | ours / OpenSSL (wall) | ours / OpenSSL (CPU) |")
print("|---|---|---|---|---|---|")
for label, group, function in rows:
    ours = median(group, function)
    ring = median(group, "ring") or median(group, "ring-verify-alone")
    if ours is None or ring is None:
        print(f"| {label} | not measured (needs `--all-features`) | | | | |")
        continue
    print(
        f"| {label} | {ours / 1e3:.1f} µs | {ring / 1e3:.1f} µs | {ours / ring:.2f}× "
        f"| {ours / openssl_ns:.2f}× | {ours / openssl_cpu_ns:.2f}× |"
    )
ring = median("rsa2-verify", "ring")
if ring is not None:
    print(
        f"| `ring` itself | {ring / 1e3:.1f} µs | | | {ring / openssl_ns:.2f}× "
        f"| {ring / openssl_cpu_ns:.2f}× |"
    )
EOF

# Instructions per verification, exact and independent of the machine's load: ours from
# benches/icount.sh, OpenSSL's by callgrind counting inside EVP_PKEY_verify during two
# `openssl speed` runs of different lengths (the difference cancels the fixed costs).
if [ -n "${ICOUNT:-}" ]; then
    command -v valgrind >/dev/null || { echo "ICOUNT=1 needs valgrind" >&2; exit 2; }
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for s in 1 2; do
        valgrind --tool=callgrind --toggle-collect=EVP_PKEY_verify \
            --callgrind-out-file="$scratch/cg.$s" openssl speed -seconds "$s" rsa2048 \
            >/dev/null 2>"$scratch/speed.$s"
    done
    n() { sed -n 's/.*public rsa.s for [0-9]*s: \([0-9]*\) .*/\1/p' "$scratch/speed.$1"; }
    i() { sed -n 's/^summary: \([0-9]*\).*/\1/p' "$scratch/cg.$1"; }
    openssl_icount=$(awk -v a="$(i 1)" -v b="$(i 2)" -v na="$(n 1)" -v nb="$(n 2)" \
        'BEGIN { printf "%.0f", (b - a) / (nb - na) }')
    echo
    echo "OpenSSL verify under callgrind: $openssl_icount instructions"
    benches/icount.sh rsa2- | awk -v o="$openssl_icount" '
        NF == 2 && $1 ~ /\// { printf "%-44s %12.0f  %5.2f x OpenSSL\n", $1, $2, $2 / o; next }
        { print }'
fi
