#!/usr/bin/env bash
# A/B timing of two commits of graft on the same machine in the same run: builds bench/bench_mlp
# of each (Release) for each instruction set given, runs them in alternation (ROUNDS rounds, so
# that drift of a shared machine hits both alike) and prints the median time of each benchmark,
# per ISA, with the ratio new/old.
#
#   tools/bench_ab.sh OLD NEW [ISA...]      (ISA: -march values; default: native x86-64-v3)
#   ROUNDS=5 FILTER='^(W1_train_step_batch64|W3_lenet_train_step_batch64)$' tools/bench_ab.sh ...
#   CLOCK=cpu tools/bench_ab.sh ...         (CPU time of the benchmark thread; default: real time)
#
# Example: the cost of issue 12's fixed summation order, tools/bench_ab.sh 033f20c 4b94499.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${1:?usage: tools/bench_ab.sh OLD NEW [ISA...]}"
new="${2:?usage: tools/bench_ab.sh OLD NEW [ISA...]}"
shift 2
isas=("$@")
[ ${#isas[@]} -gt 0 ] || isas=(native x86-64-v3)
rounds="${ROUNDS:-5}"
clock="${CLOCK:-real}"
column=3 # Google Benchmark's CSV: name, iterations, real_time, cpu_time
[ "$clock" = cpu ] && column=4
filter="${FILTER:-^(W1_train_step_batch64|W2_inference_batch256|W3_lenet_train_step_batch64)$}"
work="$here/build/ab"
mkdir -p "$work"

for c in "$old" "$new"; do
  dir="$work/src-$c"
  [ -d "$dir" ] || git -C "$here" worktree add --detach -f "$dir" "$c" >/dev/null
  for isa in "${isas[@]}"; do
    cmake -S "$dir" -B "$dir/build-$isa" -DCMAKE_BUILD_TYPE=Release -DGRAFT_BUILD_TESTS=OFF \
      -DGRAFT_BUILD_EXAMPLES=OFF -DGRAFT_BUILD_BENCH=ON -DGRAFT_BENCH_PEERS=OFF \
      -DGRAFT_ARCH="$isa" >/dev/null
    cmake --build "$dir/build-$isa" --target bench_mlp -j "$(nproc)" >/dev/null
  done
done

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $rounds rounds; $clock time"
results="$work/results.txt"
: >"$results"
for ((r = 1; r <= rounds; r++)); do
  for isa in "${isas[@]}"; do
    for c in "$old" "$new"; do
      "$work/src-$c/build-$isa/bench/bench_mlp" --benchmark_filter="$filter" \
        --benchmark_min_time=1 --benchmark_format=csv 2>/dev/null | grep -v '^name' |
        awk -F, -v c="$c" -v isa="$isa" -v col="$column" '{gsub(/"/, "", $1); print isa, $1, c, $col}' >>"$results"
    done
  done
done

python3 - "$results" "$old" "$new" <<'EOF'
import collections, statistics, sys
path, old, new = sys.argv[1:]
t = collections.defaultdict(list)
for line in open(path):
    isa, name, commit, ns = line.split()
    t[(isa, name, commit)].append(float(ns))
print(f"| ISA | benchmark | {old} (median) | {new} (median) | new/old |")
print("|---|---|---|---|---|")
for isa, name in sorted({(k[0], k[1]) for k in t}):
    a, b = statistics.median(t[(isa, name, old)]), statistics.median(t[(isa, name, new)])
    print(f"| {isa} | {name} | {a / 1e3:.1f} us | {b / 1e3:.1f} us | {b / a:.3f} |")
EOF
