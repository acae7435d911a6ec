#!/usr/bin/env bash
# Compile cost of a graft training program against its depth and width (issue 13 point 5): for
# L hidden layers dense<W> + relu (L in LAYERS, W in WIDTHS) under an MLP on 28x28 inputs with a
# classifier<10> head, generates the smallest whole training program (make_model, a trainer with
# SGD momentum at batch 64, one step), builds it (compile and link, one compiler at a time) with
# the release flags, and measures the wall time and the largest resident set of the compiler
# (GNU time's %M: the driver's rusage, which includes cc1plus and the linker it waited for), and
# the CPU time (user + sys) as well, which a loaded machine disturbs less than the wall time.
# A row "includes only" (graft.hpp and an empty main) is the floor every program pays. Layers of
# one width are one type (dense<W> on W inputs), instantiated once however many there are; the
# rows "distinct widths" (64, 80, 96, ...: every layer a new type) are the other end, where every
# layer costs its own instantiations (DISTINCT=0 leaves them out).
#
#   tools/compile_cost.sh [BUILD_DIR] [OUT.md]      (defaults: build/release, build/compile_cost.md)
#   LAYERS="2 4 8 16" WIDTHS="64 1024" REPS=2 CXX=c++ tools/compile_cost.sh
#
# The flags are those of bench/minimal_graft.cpp in BUILD_DIR/compile_commands.json (a release
# configure: -O3 -DNDEBUG -march=native ... -std=gnu++20) when it is there, else the release
# preset's. Each program is built REPS times (default 2) and the fastest build is kept, with the
# largest RSS of all its builds; each program is then run once to check that it trains.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build/release}"
out="${2:-build/compile_cost.md}"
layers=(${LAYERS:-2 4 8 16})
widths=(${WIDTHS:-64 1024})
reps="${REPS:-2}"
cxx="${CXX:-c++}"
cd "$here"

[ -x /usr/bin/time ] || {
  echo "compile_cost.sh: needs GNU time (apt-get install time)" >&2
  exit 1
}

# The release flags of graft's own targets, without -o/-c and the source file.
flags="$(python3 - "$build/compile_commands.json" "$here" <<'EOF'
import json, os, shlex, sys
db, root = sys.argv[1], sys.argv[2]
try:
    entry = next(e for e in json.load(open(db)) if e["file"].endswith("bench/minimal_graft.cpp"))
    args = shlex.split(entry["command"])[1:]
    keep, skip = [], False
    for x in args:
        if skip:
            skip = False
        elif x == "-o":
            skip = True
        elif x != "-c" and not x.endswith("minimal_graft.cpp"):
            keep.append(x)
    print(" ".join(keep))
except (OSError, StopIteration, ValueError):
    print(f"-DGRAFT_HAVE_ZLIB=1 -DGRAFT_USE_THREADS=1 -DXTENSOR_USE_XSIMD -I{root}/include -O3 -DNDEBUG "
          "-march=native -ffp-contract=off -pthread -std=gnu++20")
EOF
)"
libs=""
case "$flags" in *GRAFT_HAVE_ZLIB*) libs="$libs -lz" ;; esac
case "$flags" in *-fopenmp*) libs="$libs -fopenmp" ;; esac
case "$flags" in *GRAFT_USE_THREADS*) libs="$libs -pthread" ;; esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# width L W KIND I: the width of hidden layer I (KIND same: W; distinct: 64 + 16 I)
width() { if [ "$3" = distinct ]; then echo $((64 + 16 * $4)); else echo "$2"; fi; }

# gen L W KIND: the program's source on stdout (L = 0: the includes and an empty main)
gen() {
  local l="$1" w="$2" kind="$3"
  echo '#include <cstdint>'
  echo '#include <memory>'
  echo '#include <vector>'
  echo '#include <graft/graft.hpp>'
  echo 'namespace g = graft;'
  if [ "$l" -eq 0 ]; then
    echo 'int main() { return 0; }'
    return
  fi
  printf 'using backbone = g::stack<g::input<1, 28, 28>, g::flatten'
  for ((i = 0; i < l; ++i)); do printf ', g::dense<%d>, g::relu' "$(width "$l" "$w" "$kind" "$i")"; done
  echo '>;'
  cat <<'EOF'
using net_t = g::model<backbone, g::classifier<10>>;
int main() {
  auto net = g::make_model<net_t>(g::seed{0});
  auto t = std::make_unique<g::trainer<net_t, 64, g::sgd>>(*net, g::sgd{.lr = 0.01f, .momentum = 0.9f});
  std::vector<std::int32_t> y(64);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 10);
  for (std::size_t i = 0; i < 64 * 784; ++i) t->input()[i] = static_cast<float>(i % 255) / 255.0f;
  const double loss = t->step(y.data(), 64);
  return loss > 0.0 ? 0 : 1;
}
EOF
}

# params L W KIND: the model's parameter count
params() {
  local l="$1" w="$2" kind="$3" n=0 in=784 o i
  [ "$l" -eq 0 ] && { echo "-"; return; }
  for ((i = 0; i < l; ++i)); do
    o="$(width "$l" "$w" "$kind" "$i")"
    n=$((n + in * o + o))
    in="$o"
  done
  echo $((n + in * 10 + 10))
}

cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
configs=("0 0 same")
for w in "${widths[@]}"; do for l in "${layers[@]}"; do configs+=("$l $w same"); done; done
if [ "${DISTINCT:-1}" != 0 ]; then for l in "${layers[@]}"; do configs+=("$l 0 distinct"); done; fi
for c in "${configs[@]}"; do
  read -r l w kind <<<"$c"
  src="$tmp/train_${l}x${w}${kind}.cpp"
  exe="$tmp/train_${l}x${w}${kind}"
  gen "$l" "$w" "$kind" >"$src"
  best="" cpu_best="" rss=0
  for ((r = 0; r < reps; ++r)); do
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$cxx" $flags "$src" -o "$exe" $libs
    read -r t u k m <"$tmp/time"
    c="$(awk -v u="$u" -v k="$k" 'BEGIN { printf "%.2f", u + k }')"
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best="$t"; fi
    if [ -z "$cpu_best" ] || awk -v a="$c" -v b="$cpu_best" 'BEGIN { exit !(a < b) }'; then cpu_best="$c"; fi
    [ "$m" -gt "$rss" ] && rss="$m"
  done
  if "$exe"; then ran=ok; else ran="FAILED ($?)"; fi
  size="$(strip -o "$tmp/stripped" "$exe" && stat -c %s "$tmp/stripped")"
  if [ "$l" -eq 0 ]; then
    label="includes only"
  elif [ "$kind" = distinct ]; then
    label="$l layers, distinct widths $(width "$l" 0 distinct 0)..$(width "$l" 0 distinct $((l - 1)))"
  else
    label="$l x dense<$w>"
  fi
  line="| $label | $(params "$l" "$w" "$kind") | $best s | $cpu_best s | $((rss / 1024)) MB | $((size / 1024)) KiB | $ran |"
  echo "$line" >&2
  rows+=("$line")
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

{
  echo "Compile cost of a graft training program (tools/compile_cost.sh): an MLP on 28x28 inputs"
  echo "with L hidden layers dense<W> + relu and a classifier<10> head (\"distinct widths\": hidden"
  echo "layer i is dense<64 + 16 i>, so no two layers share a type), make_model, a trainer<net, 64,"
  echo "sgd> and one step; compiled and linked by \`$("$cxx" --version | head -1)\` with"
  echo "\`$flags\`; the fastest of $reps builds (wall time, and CPU time user + sys of the compiler and"
  echo "linker, which other processes on a shared machine disturb less), the largest RSS of the compiler"
  echo "over them."
  echo "Machine: ${cpu:-?}, $(nproc) cores, load average $load_start at the start, $load_end at the end."
  echo
  echo "| program | parameters | build wall time | build CPU time | compiler max RSS | stripped binary | runs |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
echo "wrote $out" >&2
