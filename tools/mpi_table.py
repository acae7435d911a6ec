#!/usr/bin/env python3
"""Scaling of data-parallel pre-training over MPI on this machine: bench_mpi (Google Benchmark)
under mpirun, one process against two, in interleaved rounds; prints the README's table.

    tools/mpi_table.py [BUILD_DIR] [--rounds 3] [--repetitions 3] [--out FILE.md]

Each round runs, one after the other: 1 process with 1 thread (the baseline), 2 processes with 1
thread each (shards{2}: the data-parallel run, whose weights equal one process's with shards{2}),
and 1 process with 2 threads (graft's own threads, GRAFT_THREADS=2: the other way to use the two
cores of one machine). A step's time is the wall time of rank 0's pretrain calls divided by their
steps (20 per call); the figures are medians over every repetition of every round, and the ratio
is the median of the per-round ratios of medians (spread min-max over the rounds). comm ms/step
is rank 0's time in send and receive (its waits for the other rank included); bytes/step is what
rank 0 sends per step (the gradient, the batch-norm statistics and the loss).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

MODELS = [("mpi_mlp_pretrain_batch64", "MLP 784-256-128-10"),
          ("mpi_lenet_pretrain_batch64", "LeNet-5"),
          ("mpi_resnet_pretrain_batch64", "ResNet (batch norm)")]
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader",
          "--mca", "btl_vader_single_copy_mechanism", "none"]


def cpu_line():
    model, flags = "unknown CPU", set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else model
        m = re.search(r"^CPU family:\s*(.+)$", out, re.M)
        fam = m.group(1).strip() if m else "?"
        m = re.search(r"^Model:\s*(.+)$", out, re.M)
        mod = m.group(1).strip() if m else "?"
        m = re.search(r"^Flags:\s*(.+)$", out, re.M)
        flags = set(m.group(1).split()) if m else set()
    except (OSError, subprocess.CalledProcessError):
        fam = mod = "?"
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE/other"
    return f"{model} (family {fam} model {mod}), {isa}, {os.cpu_count()} cores"


def run(build, processes, threads, repetitions):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, GRAFT_THREADS=str(threads))
    cmd = MPIRUN + ["-np", str(processes), os.path.join(build, "bench", "bench_mpi"),
                    f"--benchmark_repetitions={repetitions}", f"--benchmark_out={out}",
                    "--benchmark_out_format=json"]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = json.load(open(out))
    os.unlink(out)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"].split("/")[0]
        runs.setdefault(name, []).append(b)
    return data["context"], runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    configs = [("1p1t", 1, 1), ("2p1t", 2, 1), ("1p2t", 1, 2)]
    step_ms = {c[0]: {m: [] for m, _ in MODELS} for c in configs}  # every repetition
    round_med = {c[0]: {m: [] for m, _ in MODELS} for c in configs}  # per round
    comm, sent, grad = ({m: [] for m, _ in MODELS} for _ in range(3))
    context = None
    for r in range(a.rounds):
        for key, p, t in configs:
            print(f"[mpi_table] round {r + 1}/{a.rounds}: {p} process(es), {t} thread(s) each",
                  file=sys.stderr, flush=True)
            ctx, runs = run(a.build, p, t, a.repetitions)
            context = context or ctx
            for m, _ in MODELS:
                ms = [b["real_time"] / 20.0 for b in runs[m]]  # time unit: ms per 20-step call
                step_ms[key][m] += ms
                round_med[key][m].append(statistics.median(ms))
                if key == "2p1t":
                    comm[m] += [b["comm_ms_per_step"] for b in runs[m]]
                    sent[m] += [b["bytes_per_step"] for b in runs[m]]
                grad[m] = runs[m][0]["gradient_bytes"]

    def ratio(m, num, den):
        rs = [d / n for n, d in zip(round_med[num][m], round_med[den][m])]
        return f"{statistics.median(rs):.2f}× ({min(rs):.2f}-{max(rs):.2f})"

    lines = [
        f"Data-parallel pre-training, batch 64 (SGD with momentum), {context.get('data', '?')}; "
        f"CPU: {cpu_line()}; medians over {a.rounds} rounds × {a.repetitions} repetitions "
        f"(`python3 tools/mpi_table.py {a.build} --rounds {a.rounds}`).",
        "",
        "| model | gradient | step, 1 process | step, 2 processes | speed-up, 2 processes "
        "| comm/step (2 processes) | sent/step | step, 1 process × 2 threads | speed-up, 2 threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, label in MODELS:
        med = {k: statistics.median(step_ms[k][m]) for k in step_ms}
        lines.append(
            f"| {label} | {grad[m] / 1e3:.0f} kB | {med['1p1t']:.2f} ms | {med['2p1t']:.2f} ms "
            f"| {ratio(m, '2p1t', '1p1t')} | {statistics.median(comm[m]):.2f} ms "
            f"| {statistics.median(sent[m]) / 1e3:.0f} kB | {med['1p2t']:.2f} ms "
            f"| {ratio(m, '1p2t', '1p1t')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
