#!/usr/bin/env bash
# graft's tests on ARM (issue 12): cross-compiled with Debian's g++-aarch64-linux-gnu and
# g++-arm-linux-gnueabihf (cmake/toolchains/), static executables run under qemu-user.
#
#   tools/cross.sh                       both targets: aarch64 (armv8-a) and armv7 (NEON, VFPv4)
#   GRAFT_CROSS_ARCHES=aarch64 tools/cross.sh
#
# For each target: configures build/cross-<arch> (Release, warnings are errors, GRAFT_ARCH empty:
# the toolchain file sets the instruction set), builds the test programs below and one example,
# runs the tests through ctest (the toolchain's CMAKE_CROSSCOMPILING_EMULATOR puts qemu in front
# of them; test_training as training_cross, without its real-MNIST case) and the example under
# qemu: pretrain_mlp, one epoch on a 6000/1000-image subset of MNIST written into build/cross-data
# (the full epoch takes minutes under emulation); it must print a test accuracy of at least 80%.
# The two targets are built and run at the same time, one compiler or emulator process each
# (every test is one translation unit: make -j buys nothing within one target). Needs the packages
# ./run test installs and MNIST (./run setup).
# Exit status: 0 when every build, test and the example passed on every target.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

read -r -a arches <<<"${GRAFT_CROSS_ARCHES:-aarch64 armv7}"
tests=(kernels gradients training io reproducible math quant)
# ctest's name of a test in a cross build: training_cross is test_training without its real-MNIST
# case (one epoch on 24000 images: 45 s under qemu-aarch64, 100 s under qemu-arm on a loaded
# machine), which the example's epoch on the subset stands for (tests/CMakeLists.txt).
ctest_name() { if [ "$1" = training ]; then echo training_cross; else echo "$1"; fi; }
example=pretrain_mlp
data="${GRAFT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graft}"
subset="$here/build/cross-data"

log() { printf '[cross] %s\n' "$*" >&2; }

toolchain_of() {
  case "$1" in
    aarch64) echo cmake/toolchains/aarch64-linux-gnu.cmake ;;
    armv7) echo cmake/toolchains/arm-linux-gnueabihf.cmake ;;
    *)
      log "unknown target '$1' (aarch64 or armv7)"
      return 1
      ;;
  esac
}

# A subset of MNIST for the example: the first 6000 training and 1000 test images and labels
# (IDX files with the count in the header cut down), from the raw or .gz files ./run setup fetched.
make_subset() {
  [ -s "$subset/mnist/t10k-labels-idx1-ubyte" ] && return 0
  python3 - "$data/mnist" "$subset/mnist" <<'EOF'
import gzip, pathlib, struct, sys
src, dst = map(pathlib.Path, sys.argv[1:])
dst.mkdir(parents=True, exist_ok=True)
for split, n in (("train", 6000), ("t10k", 1000)):
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{split}-{kind}"
        raw, gz = src / name, src / (name + ".gz")
        blob = raw.read_bytes() if raw.exists() else gzip.decompress(gz.read_bytes())
        ndim = blob[3]
        dims = list(struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim]))
        item = 1
        for d in dims[1:]:
            item *= d
        dims[0] = n
        head = 4 + 4 * ndim
        part = dst / (name + ".part")
        part.write_bytes(blob[:4] + struct.pack(f">{ndim}I", *dims) + blob[head : head + n * item])
        part.rename(dst / name)
EOF
}

# One target: configure, build, run. Prints what it does; writes build/cross-<arch>/summary.txt.
run_arch() {
  local arch="$1" dir="build/cross-$1" toolchain status=0
  toolchain="$(toolchain_of "$arch")"
  local summary="$dir/summary.txt"
  mkdir -p "$dir"
  : >"$summary"
  rm -f "$dir/mlp_mnist_subset.graft"
  local t0=$SECONDS
  if ! cmake -S . -B "$dir" -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DGRAFT_BUILD_TESTS=ON -DGRAFT_BUILD_EXAMPLES=ON \
    -DGRAFT_BUILD_BENCH=OFF -DGRAFT_WERROR=ON -DGRAFT_ARCH= >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    echo "$arch: configure FAILED ($toolchain)" >>"$summary"
    return 1
  fi
  local emulator
  emulator="$(sed -n 's/^GRAFT_CROSS_EMULATOR:FILEPATH=//p' "$dir/CMakeCache.txt")"
  if [ -z "$emulator" ] || [ ! -x "$emulator" ]; then
    echo "$arch: no qemu-user emulator found (apt-get install qemu-user)" | tee -a "$summary"
    return 1
  fi

  # build: each program on its own, so that one that does not compile does not hide the others
  local built=() broken=() target
  for target in "${tests[@]/#/test_}" "$example"; do
    local tt=$SECONDS
    if cmake --build "$dir" -j 1 --target "$target" >"$dir/build-$target.log" 2>&1; then
      echo "built $target in $((SECONDS - tt)) s"
      built+=("$target")
    else
      broken+=("$target")
      status=1
      echo "$target does not build ($dir/build-$target.log); its first errors:"
      grep -m 12 -E 'error|Error' "$dir/build-$target.log" || tail -n 20 "$dir/build-$target.log"
    fi
  done
  local t_build=$((SECONDS - t0))
  echo "$arch: built in ${t_build} s: ${built[*]:-nothing}" >>"$summary"
  [ ${#broken[@]} -eq 0 ] || echo "$arch: BUILD FAILED: ${broken[*]}" >>"$summary"

  # run: the tests that built, through ctest (which runs them under $emulator)
  local t1=$SECONDS ran=()
  for target in "${built[@]}"; do
    [ "$target" != "$example" ] && ran+=("$(ctest_name "${target#test_}")")
  done
  if [ ${#ran[@]} -gt 0 ]; then
    local regex
    regex="^($(
      IFS='|'
      echo "${ran[*]}"
    ))\$"
    if GRAFT_REQUIRE_DATA="${GRAFT_REQUIRE_DATA:-1}" ctest --test-dir "$dir" -R "$regex" \
      --output-on-failure 2>&1 | tee "$dir/ctest.log"; then
      echo "$arch: tests passed under $(basename "$emulator"): ${ran[*]}" >>"$summary"
    else
      status=1
      local failed_tests
      failed_tests="$(sed -n 's/^[[:space:]]*[0-9]* - \([a-z_]*\) .*/\1/p' "$dir/ctest.log" | xargs)"
      echo "$arch: TESTS FAILED under $(basename "$emulator"): $failed_tests (of ${ran[*]})" >>"$summary"
    fi
    sed -n 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: \([a-z_]*\) [ .*]*\([A-Za-z*]*\) *\([0-9.]* sec\)$/  \1 \2 \3/p' \
      "$dir/ctest.log" >>"$summary"
  fi

  # the example: one epoch of pretrain_mlp on the MNIST subset, under qemu
  if [[ " ${built[*]} " == *" $example "* ]]; then
    local t2=$SECONDS out
    echo "running $example --dataset mnist --epochs 1 under $(basename "$emulator") (MNIST subset)"
    if out="$(GRAFT_DATA_DIR="$subset" "$emulator" "$dir/examples/$example" --dataset mnist --epochs 1 \
      --out "$dir/mlp_mnist_subset.graft" 2>&1)"; then
      echo "$out"
      local acc
      acc="$(sed -n 's/^mnist test accuracy: \([0-9.]*\)%.*/\1/p' <<<"$out")"
      if [ -n "$acc" ] && grep -q '6000 training and 1000 test images' <<<"$out" &&
        awk -v a="$acc" 'BEGIN { exit !(a >= 80) }'; then
        echo "$arch: $example passed: test accuracy $acc% after one epoch on 6000 images ($((SECONDS - t2)) s)" >>"$summary"
      else
        status=1
        echo "$arch: $example FAILED: expected a test accuracy >= 80% on 1000 images, got '${acc}'" >>"$summary"
      fi
    else
      echo "$out"
      status=1
      echo "$arch: $example FAILED (exit status non-zero)" >>"$summary"
    fi
  fi
  echo "$arch: wall time: build ${t_build} s, run $((SECONDS - t1)) s, total $((SECONDS - t0)) s" >>"$summary"
  return $status
}

for arch in "${arches[@]}"; do toolchain_of "$arch" >/dev/null; done
if [ ! -s "$data/mnist/t10k-labels-idx1-ubyte" ] && [ ! -s "$data/mnist/t10k-labels-idx1-ubyte.gz" ]; then
  log "MNIST not found in $data/mnist: run ./run setup first"
  exit 1
fi
make_subset

start=$SECONDS
pids=()
for arch in "${arches[@]}"; do
  log "$arch: configure, build and run in build/cross-$arch"
  {
    run_arch "$arch" 2>&1 | sed -u "s/^/[$arch] /"
    exit "${PIPESTATUS[0]}"
  } &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
done

# ---- examples/embedded (issue 14), on the aarch64 target, after the targets above (one process at
# a time): train_export built and run on the build machine (one epoch of the MLP on Fashion-MNIST;
# writes the weights and 16 test images with the host's classes as headers), then the freestanding
# classifier cross-built with the toolchain file (-static -Os -fno-exceptions -fno-rtti) and run
# under qemu-aarch64 by ctest: it fails unless its 16 classes are the host's. Likewise
# finetune_export (LeNet pre-trained on Fashion-MNIST 0-4 with a new classifier<5>, 100 labelled
# images of 5-9, 500 test images and the host's finetune<bias_only> result) and finetune (the
# same fine-tuning on the device by graft::device_trainer, from the constant weights): it fails
# unless its correct count and trainable-weights hash are the host's, or if a step fails. Logs in
# build/cross-aarch64/embedded-*.log; a line in its summary.
run_embedded() {
  local host=build/embedded-host target=build/embedded-aarch64 logs=build/cross-aarch64 t0=$SECONDS
  local step dir result
  for step in host target; do
    local opts=(-DCMAKE_BUILD_TYPE=Release -DGRAFT_EMBEDDED_WERROR=ON)
    dir=$host
    if [ "$step" = target ]; then
      dir=$target
      opts+=(-DCMAKE_TOOLCHAIN_FILE="$here/cmake/toolchains/aarch64-linux-gnu.cmake"
        -DGRAFT_EMBEDDED_GENERATED="$here/$host/generated")
    fi
    if ! { cmake -S examples/embedded -B "$dir" -G "Unix Makefiles" "${opts[@]}" &&
      cmake --build "$dir" -j 1; } >"$logs/embedded-$step.log" 2>&1; then
      tail -n 30 "$logs/embedded-$step.log"
      echo "aarch64: examples/embedded FAILED to build ($step: $logs/embedded-$step.log)" >>"$logs/summary.txt"
      return 1
    fi
  done
  if ctest --test-dir "$target" --output-on-failure -V >"$logs/embedded-run.log" 2>&1; then
    result="$(sed -n 's/^[0-9]*: \(.*classes equal.*\|fine-tuned on the device.*\)$/\1/p' \
      "$logs/embedded-run.log")"
    echo "$result"
    echo "aarch64: examples/embedded passed under qemu ($((SECONDS - t0)) s): ${result//$'\n'/ | }" >>"$logs/summary.txt"
  else
    cat "$logs/embedded-run.log"
    echo "aarch64: examples/embedded FAILED under qemu ($logs/embedded-run.log)" >>"$logs/summary.txt"
    return 1
  fi
}
if [[ " ${arches[*]} " == *" aarch64 "* ]]; then
  log "aarch64: examples/embedded (host generator, then the freestanding classifier under qemu)"
  run_embedded 2>&1 | sed -u "s/^/[aarch64] /"
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
fi

log "summary (wall time of the whole cross part: $((SECONDS - start)) s, targets built and run concurrently)"
for arch in "${arches[@]}"; do
  sed 's/^/  /' "build/cross-$arch/summary.txt" >&2 || true
done
# for information (the committed hashes of test_reproducible are the check): the example's weights
# after one epoch, byte for byte the same on every target?
files=() with=()
for arch in "${arches[@]}"; do
  f="build/cross-$arch/mlp_mnist_subset.graft"
  [ -s "$f" ] && files+=("$f") && with+=("$arch")
done
if [ ${#files[@]} -gt 1 ]; then
  same=yes
  for f in "${files[@]:1}"; do cmp -s "${files[0]}" "$f" || same=no; done
  log "$example weight files identical on ${with[*]}: $same"
fi
[ $failed -eq 0 ] || log "FAILED: see the summary above and build/cross-<arch>/*.log"
exit $failed
