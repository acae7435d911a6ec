#!/usr/bin/env bash
# Sizes of freestanding inference programs (issue 14, point 5): minimal batch-1 programs with their
# weights compiled in (examples/embedded/sizes/: the MLP 784-256-128-10 and LeNet + classifier<10>,
# float and int8; seeded untrained weights exported by gen_seeded with graft::export_header and
# graft::quant::export_header: a program's size does not depend on the values), and an empty
# program (printf only, no graft) as the baseline,
# each built static with the same libc and flags:
#
#   -std=c++20 -Os -fno-exceptions -fno-rtti -static -ffunction-sections -fdata-sections
#   -Wl,--gc-sections   (+ graft's -ffp-contract=off -DXTENSOR_USE_XSIMD)
#
# for x86-64 (g++, -march=x86-64-v3: AVX2 + FMA) and aarch64 (aarch64-linux-gnu-g++,
# -march=armv8-a; skipped when that compiler is missing). Reports per program: the stripped size;
# graft's code = .text of the program minus .text of the empty program; the same counted from the
# symbol table (text symbols by address, program minus empty: immune to the linker's alignment and
# Cortex-A53 erratum veneers, which move .text by up to 4 KiB either way on aarch64); constant data
# (.rodata minus the empty program's: the weights); static RAM (.bss minus the empty program's: the
# runner); and the iostream symbols linked (nm | grep -c ios_base: must be 0). Each program is run
# once (aarch64 under qemu-aarch64 when present).
#
#   tools/sizes.sh [OUT.md]      (default build/sizes.md; work files in build/sizes/)
# Exit status: non-zero when a program does not build or run, or links an iostream symbol.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-build/sizes.md}"
work=build/sizes
src=examples/embedded/sizes
mkdir -p "$work"
log() { printf '[sizes] %s\n' "$*" >&2; }

common=(-std=c++20 -DXTENSOR_USE_XSIMD -ffp-contract=off -Iinclude -I"$work")
# shellcheck disable=SC2054 # -Wl,--gc-sections is one flag
flags=(-Os -fno-exceptions -fno-rtti -static -ffunction-sections -fdata-sections -Wl,--gc-sections)
programs=(empty mlp lenet mlp_int8 lenet_int8)

log "gen_seeded: exporting seeded MLP and LeNet weights (float, int8) into $work"
g++ "${common[@]}" -O1 "$src/gen_seeded.cpp" -o "$work/gen_seeded"
"$work/gen_seeded" "$work"

# target name, compiler prefix ('' = native), -march, emulator ('' = native)
targets=("x86-64|| -march=x86-64-v3|" "aarch64|aarch64-linux-gnu-| -march=armv8-a|qemu-aarch64")
status=0
rows=()
for t in "${targets[@]}"; do
  IFS='|' read -r name prefix march emu <<<"$t"
  if ! command -v "${prefix}g++" >/dev/null 2>&1; then
    log "$name: ${prefix}g++ not found, skipped"
    rows+=("| $name | (${prefix}g++ not installed: skipped) | | | | | | |")
    continue
  fi
  for p in "${programs[@]}"; do
    log "$name: building $p"
    # shellcheck disable=SC2086 # $march is one flag or none
    if ! "${prefix}g++" "${common[@]}" "${flags[@]}" $march "$src/$p.cpp" -o "$work/$p.$name"; then
      status=1
      continue
    fi
    "${prefix}strip" -o "$work/$p.$name.stripped" "$work/$p.$name"
    if [ -n "$emu" ] && ! command -v "$emu" >/dev/null 2>&1; then
      log "$name: $emu not found: $p not run"
    elif ! run_out="$(${emu:+"$emu"} "./$work/$p.$name")"; then
      log "$name: $p FAILED to run"
      status=1
    else
      log "$name: $p runs: $run_out"
    fi
  done
  [ -s "$work/empty.$name" ] || continue
  for p in "${programs[@]:1}"; do
    [ -s "$work/$p.$name" ] || continue
    row="$(python3 - "$prefix" "$work/empty.$name" "$work/$p.$name" <<'EOF'
import subprocess, sys, os
prefix, empty, prog = sys.argv[1:]
def sections(f):
    s = {}
    for line in subprocess.run([prefix + "size", "-A", f], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            s[parts[0]] = int(parts[1])
    return s
def text_symbols(f):
    # unique (address, size) of the defined code symbols: aliases counted once
    seen = set()
    for line in subprocess.run([prefix + "nm", "-S", "--defined-only", f], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwWiI":
            seen.add((int(parts[0], 16), int(parts[1], 16)))
    return sum(size for _, size in seen)
def ios(f):
    names = subprocess.run([prefix + "nm", "-C", f], capture_output=True, text=True,
                           check=True).stdout
    return sum(1 for line in names.splitlines() if "ios_base" in line)
e, p = sections(empty), sections(prog)
stripped = os.path.getsize(prog + ".stripped")
cells = [
    f"{stripped / 1024:,.1f} KiB",
    f"{(p['.text'] - e['.text']):,} B",
    f"{(text_symbols(prog) - text_symbols(empty)):,} B",
    f"{(p['.rodata'] - e['.rodata']) / 1024:,.1f} KiB",
    f"{(p.get('.bss', 0) - e.get('.bss', 0)):,} B",
    str(ios(prog)),
]
print(" | ".join(cells))
EOF
)"
    rows+=("| $name | $p | $row |")
    [[ "$row" == *"| 0" ]] || {
      log "$name: $p links iostream symbols"
      status=1
    }
  done
  es="$(stat -c %s "$work/empty.$name.stripped")"
  rows+=("| $name | empty (printf only) | $(awk -v b="$es" 'BEGIN { printf "%.1f KiB", b / 1024 }') | (baseline) | | | | $("${prefix}nm" -C "$work/empty.$name" | grep -c ios_base || true) |")
done

# the largest of graft's functions in the x86-64 and aarch64 MLP programs
top() {
  local prefix="$1" file="$2"
  [ -s "$file" ] || return 0
  "${prefix}nm" -C -S --size-sort --defined-only "$file" | grep -E ' [tTwW] ' |
    grep -E 'graft::|embedded::| main$' | tail -n 8 | tac | python3 -c '
import sys
for line in sys.stdin:
    _, size, _, name = line.rstrip("\n").split(" ", 3)
    print(f"    {int(size, 16):6d}  {name if len(name) <= 150 else name[:147] + chr(46) * 3}")'
}

cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
{
  echo "Sizes of freestanding batch-1 inference programs (tools/sizes.sh, $(date -u +%Y-%m-%d),"
  echo "$cpu; $(g++ --version | head -n 1))"
  echo
  echo "Flags: ${flags[*]}; x86-64 with -march=x86-64-v3, aarch64 with -march=armv8-a (glibc, static)."
  echo "graft code = .text minus the empty program's; 'by symbols' = the program's code symbols minus"
  echo "the empty program's (unique addresses). Constant data and static RAM: .rodata and .bss minus"
  echo "the empty program's. On aarch64 the .text difference also moves by the linker's Cortex-A53"
  echo "erratum 843419 stubs (on by default in Debian's cross g++: 4 KiB blocks placed where the"
  echo "layout needs them, in the empty program too; -mno-fix-cortex-a53-843419 removes them): the"
  echo "symbol column is graft's code there. int8: graft::quant::runner (x86-64-v3: its AVX2"
  echo "kernels; armv8-a: NEON without dotprod), float inputs quantised in the program (its static"
  echo "float input, 3,136 B, is in the int8 rows' static RAM)."
  echo
  echo "| target | program | stripped | graft code (.text diff) | graft code (by symbols) | constant data | static RAM | iostream symbols |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Largest functions of graft (and of the program) in the MLP programs (nm --size-sort, bytes):"
  echo
  echo '```'
  for t in "${targets[@]}"; do
    IFS='|' read -r name prefix _ _ <<<"$t"
    [ -s "$work/mlp.$name" ] || continue
    echo "  $name:"
    top "$prefix" "$work/mlp.$name"
  done
  echo '```'
} >"$out"
cat "$out"
log "wrote $out"
exit $status
