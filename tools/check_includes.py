#!/usr/bin/env python3
"""The include graph of include/graft points one way (issue 11).

Folders have ranks; a header may include only headers of its own rank or below:
  0  config.hpp, diagnostics.hpp, meta/, tensor/, random/, numeric/
  1  kernels/
  2  layers/
  3  model/
  4  freeze/, optim/, data/
  5  io/
  6  train/, testing/
  7  graft.hpp, inference.hpp (umbrella headers), mpi.hpp (data parallelism over MPI, beside
     graft.hpp: it needs <mpi.h>)
and the inference header's whole closure holds nothing from train/, optim/, freeze/ or data/, and
(issue 14: freestanding) no `thread_local`, `throw`, `try`, `typeid` or `dynamic_cast` in its code, nor in those of
quant/runtime.hpp (int8) and train/device.hpp (fine-tuning on the device)
(comments and strings aside); tests/freestanding/ checks the system headers it includes.
Prints every arrow that runs back up and exits 1 if there is one.
Usage: tools/check_includes.py [include-dir]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "include")
graft = root / "graft"
RANK = {"meta": 0, "tensor": 0, "random": 0, "numeric": 0, "kernels": 1, "layers": 2, "model": 3, "quant": 3, "freeze": 4,
        "optim": 4, "data": 4, "io": 5, "train": 6, "testing": 6}
TOP = {"config.hpp": 0, "diagnostics.hpp": 0, "graft.hpp": 7, "inference.hpp": 7, "mpi.hpp": 7}


def rank(rel):
    parts = rel.split("/")
    if len(parts) == 1:
        return TOP.get(parts[0])
    return RANK.get(parts[0])


include = re.compile(r'^\s*#\s*include\s+"graft/([^"]+)"', re.M)
graph = {}
for h in sorted(graft.rglob("*.hpp")):
    rel = h.relative_to(graft).as_posix()
    graph[rel] = include.findall(h.read_text())

bad = []
for h, deps in graph.items():
    rh = rank(h)
    if rh is None:
        bad.append(f"{h}: in no ranked folder (add it to tools/check_includes.py)")
        continue
    for d in deps:
        if d not in graph:
            bad.append(f"{h} includes graft/{d}, which does not exist")
        elif rank(d) is not None and rank(d) > rh:
            bad.append(f"{h} (rank {rh}) includes graft/{d} (rank {rank(d)}): an arrow back up")


def closure(h):
    seen, todo = set(), [h]
    while todo:
        x = todo.pop()
        for d in graph.get(x, []):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


for d in sorted(closure("inference.hpp")):
    if d.split("/")[0] in ("train", "optim", "freeze", "data"):
        bad.append(f"inference.hpp includes graft/{d} (directly or through another header)")

# freestanding: no thread-local storage, exceptions or RTTI in the inference closure's code
strip = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"', re.S)
banned = re.compile(r'\b(thread_local|throw|try|typeid|dynamic_cast)\b')
for top in ("inference.hpp", "quant/runtime.hpp", "train/device.hpp"):
    for d in sorted(closure(top) | {top}):
        code = strip.sub("", (graft / d).read_text())
        for m in banned.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            bad.append(f"{top}'s closure: graft/{d} uses `{m.group(1)}` (not freestanding; "
                       f"line {line} with comments removed)")

for b in bad:
    print("include graph:", b)
print(f"include graph: {len(graph)} headers, {sum(map(len, graph.values()))} includes, "
      f"{len(bad)} problem(s)")
sys.exit(1 if bad else 0)
