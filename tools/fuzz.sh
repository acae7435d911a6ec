#!/usr/bin/env bash
# Usage: tools/fuzz.sh [--seeds] [target...]
#   Builds the libFuzzer targets of tests/fuzz/ with clang (-fsanitize=fuzzer,address,undefined)
#   into build/fuzz/ and runs each for GRAFT_FUZZ_SECONDS seconds (default 45) on build/fuzz/corpus/
#   <target>/ (the committed seeds of tests/fuzz/corpus/<target>/ are copied in; inputs found by
#   earlier runs are kept: rm -rf build/fuzz to start over). Exits non-zero if a target crashes
#   (or fails to build), naming the target, its log and the crash file.
#   Targets: idx_raw, idx_gzip (needs zlib), weights, npy, csv (needs libcsv), safetensors (needs
#   nlohmann-json3-dev), text; default: all.
#   --seeds  rebuild tests/fuzz/make_seeds.cpp and rewrite the committed seed corpora, then exit.
#   Environment: GRAFT_FUZZ_SECONDS (45), CXX (default clang++-14, else clang++).
# The targets run concurrently, one per core: with the defaults on 2 cores, 4 x 45 s of wall time
# for the 7 targets, plus about 15 s of building each.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

seconds="${GRAFT_FUZZ_SECONDS:-45}"
out=build/fuzz

log() { printf '[fuzz] %s\n' "$*" >&2; }

# Debian packages: the compiler, libFuzzer's runtime (libclang-rt-14-dev), zlib, libcsv and the
# library's own dependencies.
fuzz_pkgs=(clang-14 libclang-rt-14-dev zlib1g-dev libcsv-dev nlohmann-json3-dev libxtensor-dev libxsimd-dev xtl-dev)

install_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

seeds_only=0
targets=()
for a in "$@"; do
  case "$a" in
    --seeds) seeds_only=1 ;;
    idx_raw | idx_gzip | weights | npy | csv | safetensors | text) targets+=("$a") ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      log "unknown argument '$a'"
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
done

install_packages "${fuzz_pkgs[@]}"
cxx="${CXX:-}"
if [ -z "$cxx" ]; then
  if command -v clang++-14 >/dev/null 2>&1; then cxx=clang++-14; else cxx=clang++; fi
fi
common=(-std=c++20 -Iinclude -Itests/fuzz -DXTENSOR_USE_XSIMD -ffp-contract=off)
zlib_flags=()
zlib_libs=()
if printf '#include <zlib.h>\n' | "$cxx" -x c++ -E - >/dev/null 2>&1; then
  zlib_flags=(-DGRAFT_HAVE_ZLIB=1)
  zlib_libs=(-lz)
fi
# libcsv: only the csv target uses it
csv_flags=()
if printf '#include <csv.h>\n' | "$cxx" -x c++ -E - >/dev/null 2>&1; then
  csv_flags=(-DGRAFT_HAVE_LIBCSV=1)
fi
mkdir -p "$out"

if [ "$seeds_only" -eq 1 ]; then
  [ ${#zlib_libs[@]} -gt 0 ] || { log "make_seeds needs zlib (zlib1g-dev)"; exit 1; }
  log "building make_seeds"
  "$cxx" "${common[@]}" "${zlib_flags[@]}" -O1 tests/fuzz/make_seeds.cpp -o "$out/make_seeds" \
    "${zlib_libs[@]}"
  rm -rf tests/fuzz/corpus
  "$out/make_seeds" tests/fuzz/corpus
  exit 0
fi

if [ ${#targets[@]} -eq 0 ]; then
  targets=(idx_raw weights)
  if [ ${#zlib_libs[@]} -gt 0 ]; then
    targets=(idx_raw idx_gzip weights)
  else
    log "zlib not found: idx_gzip skipped"
  fi
  targets+=(npy)
  if [ ${#csv_flags[@]} -gt 0 ]; then
    targets+=(csv)
  else
    log "libcsv not found: csv skipped"
  fi
  if printf '#include <nlohmann/json.hpp>\n' | "$cxx" -std=c++20 -x c++ -E - >/dev/null 2>&1; then
    targets+=(safetensors)
  else
    log "nlohmann/json.hpp not found: safetensors skipped"
  fi
  targets+=(text)
fi

# Inputs larger than these are not generated (the seeds are far smaller).
max_len() {
  case "$1" in
    idx_raw) echo 4096 ;;
    idx_gzip) echo 8192 ;;
    weights) echo 4096 ;;
    npy) echo 4096 ;;
    csv) echo 4096 ;;
    safetensors) echo 4096 ;;
    text) echo 4096 ;;
  esac
}

# A target is rebuilt when its source, a header under include/ or tests/fuzz/, or this script is
# newer than the binary.
needs_build() {
  local bin="$1" src="$2"
  [ -x "$bin" ] || return 0
  [ "$src" -nt "$bin" ] || [ "$0" -nt "$bin" ] && return 0
  [ -n "$(find include tests/fuzz -name '*.hpp' -newer "$bin" -print -quit)" ]
}

failed=()
for t in "${targets[@]}"; do
  src="tests/fuzz/fuzz_$t.cpp"
  bin="$out/fuzz_$t"
  extra=()
  if [ "$t" = csv ]; then extra=("${csv_flags[@]}" -lcsv); fi
  if needs_build "$bin" "$src"; then
    log "building $bin"
    if ! "$cxx" "${common[@]}" "${zlib_flags[@]}" -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all "$src" -o "$bin" \
      "${zlib_libs[@]}" ${extra[@]+"${extra[@]}"}; then
      log "FAILED to build $t"
      failed+=("$t (build)")
      continue
    fi
  fi
done

# One target's run; its verdict goes to $out/$t.status ("ok" or "crash"). The targets run
# concurrently, as many at a time as the machine has cores (each is one process), so the fuzzing
# takes max(1, targets / cores) x GRAFT_FUZZ_SECONDS of wall time.
run_target() {
  local t="$1" bin="$out/fuzz_$1" status=0 stats found
  local corpus="$out/corpus/$t" crashes="$out/crashes/$t" logf="$out/$t.log"
  mkdir -p "$corpus" "$crashes"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp -n tests/fuzz/corpus/"$t"/* "$corpus"/; fi
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$corpus" >"$logf" 2>&1 || status=$?
  stats="$(grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$logf" | tr '\n' ' ')"
  if [ "$status" -ne 0 ]; then
    # the newest file libFuzzer wrote there (crash-*, leak-*, timeout-*, oom-*)
    found="$(find "$crashes" -type f -printf '%T@ %p\n' | sort -rn | head -n 1 | cut -d' ' -f2-)"
    log "CRASH in fuzz_$t (exit $status): ${found:-no crash file}; log: $logf"
    grep -E 'ERROR: |SUMMARY: |runtime error|deadly signal|uncaught|==ABORTING' "$logf" | head -n 5 >&2 || true
    if [ -n "$found" ]; then log "reproduce: $bin $found"; fi
    echo crash >"$out/$t.status"
  else
    log "fuzz_$t: no crash; $stats"
    echo ok >"$out/$t.status"
  fi
}

parallel="$(nproc 2>/dev/null || echo 1)"
running=0
for t in "${targets[@]}"; do
  bin="$out/fuzz_$t"
  [ -x "$bin" ] || continue
  case " ${failed[*]-} " in *" $t (build) "*) continue ;; esac
  rm -f "$out/$t.status"
  log "running fuzz_$t for ${seconds}s (log: $out/$t.log)"
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
for t in "${targets[@]}"; do
  [ -x "$out/fuzz_$t" ] || continue
  case " ${failed[*]-} " in *" $t (build) "*) continue ;; esac
  [ "$(cat "$out/$t.status" 2>/dev/null)" = ok ] || failed+=("$t")
done

if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
log "all targets ran without a crash: ${targets[*]}"
