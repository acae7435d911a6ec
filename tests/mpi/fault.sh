#!/usr/bin/env bash
# A fault test of data-parallel training over MPI: runs `mpirun ARGS...` (a run in which one rank
# fails), then requires that the job ended with a non-zero exit code, within MAX_SECONDS, and that
# what it printed matches EXPECT (an extended regular expression naming the rank and the step).
#   fault.sh EXPECT MAX_SECONDS mpirun ARGS...
set -uo pipefail
expect="$1"
max="$2"
shift 2
start=$(date +%s%N)
# a hard stop well past the bound: a hang fails the test instead of blocking ctest
out="$(timeout -s KILL $((max + 60)) "$@" 2>&1)"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
elapsed="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
printf '%s\n' "$out"
echo "fault.sh: exit code $rc after ${elapsed} s (bound ${max} s)"
[ "$rc" -ne 0 ] || { echo "fault.sh: FAIL: the job exited with 0 although a rank failed"; exit 1; }
[ "$ms" -le $((max * 1000)) ] ||
  { echo "fault.sh: FAIL: the job took ${elapsed} s, more than ${max} s (a hang?)"; exit 1; }
grep -Eq -- "$expect" <<<"$out" || { echo "fault.sh: FAIL: no line matches: $expect"; exit 1; }
echo "fault.sh: PASS"
