#!/usr/bin/env python3
"""Runs graft's and the peers' benchmark programs of one build and prints the ratio table.

    tools/bench_table.py [BUILD_DIR] [--repetitions N] [--out FILE.md]

Every workload is measured in the same run, one program after the other; the figures are medians
of N repetitions (Google Benchmark aggregates). Ratios are graft's speed over the peer's
(> 1: graft is faster). Also measures, for the minimal batch-1 inference programs, the compile
time (best of two runs of the compile command from compile_commands.json) and the stripped size.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

PEERS = [("torch", "LibTorch"), ("dlib", "dlib"), ("tinydnn", "tiny-dnn"), ("openblas", "OpenBLAS by hand")]
WORKLOADS = [
    ("W1_train_step_batch64", "W1 training step, batch 64", "rate"),
    ("W2_inference_batch1", "W2 inference, batch 1", "latency"),
    ("W2_inference_batch256", "W2 inference, batch 256", "rate"),
    ("W3_lenet_train_step_batch64", "W3 LeNet training step, batch 64", "rate"),
    ("W3_lenet_inference_batch1", "W3 LeNet inference, batch 1", "latency"),
    ("W4_finetune_frozen2_batch64", "W4 fine-tune, 2 layers frozen", "rate"),
]


def run_bench(exe, reps):
    out = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_repetitions={reps}",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        res[name] = {"seconds": b["real_time"] * scale,
                     "items_per_second": b.get("items_per_second"),
                     "gflops": b.get("GFLOP/s", 0) / 1e9 if b.get("GFLOP/s") else None}
    return res


def fmt_rate(r):
    return f"{r / 1000:.1f}k/s" if r < 1e6 else f"{r / 1e6:.2f}M/s"


def fmt_value(entry, kind):
    if entry is None:
        return "-"
    if kind == "latency":
        return f"{entry['seconds'] * 1e6:.1f} µs"
    return fmt_rate(entry["items_per_second"])


def compile_and_size(build, target_source, binary):
    """Best-of-two compile time of target_source's command, and the stripped binary size."""
    db = os.path.join(build, "compile_commands.json")
    if not os.path.exists(db) or not os.path.exists(binary):
        return None, None
    entry = next((e for e in json.load(open(db)) if e["file"].endswith(target_source)), None)
    if entry is None:
        return None, None
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = entry["command"].split()
        if "-o" in cmd:
            cmd[cmd.index("-o") + 1] = os.path.join(tmp, "x.o")
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=entry["directory"], check=True, capture_output=True)
            t = time.perf_counter() - t0
            best = t if best is None else min(best, t)
        stripped = os.path.join(tmp, "stripped")
        subprocess.run(["strip", "-o", stripped, binary], check=True)
        size = os.path.getsize(stripped)
    return best, size


def shared_libraries(binary):
    try:
        out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for line in out.splitlines():
        parts = line.split("=>")
        path = parts[1].split("(")[0].strip() if len(parts) > 1 else ""
        if path and os.path.exists(path):
            total += os.path.getsize(os.path.realpath(path))
    return total


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = open("/proc/cpuinfo").read()
        isa = "AVX-512" if " avx512f" in flags else ("AVX2+FMA" if " avx2" in flags else "SSE")
    except OSError:
        isa = "?"
    return f"{model}, {os.cpu_count()} cores, {isa}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    bench = os.path.join(a.build, "bench")
    lines = [f"Machine: {machine()}. Medians of {a.repetitions} repetitions, one thread unless "
             f"noted; ratio = graft's speed / the peer's (> 1: graft faster).", ""]
    print("running graft's benchmarks ...", file=sys.stderr)
    graft = run_bench(os.path.join(bench, "bench_mlp"), a.repetitions)
    peers = {}
    for key, label in PEERS:
        exe = os.path.join(bench, "peers", f"bench_peer_{key}")
        if os.path.exists(exe):
            print(f"running {label} ...", file=sys.stderr)
            peers[key] = run_bench(exe, a.repetitions)
    present = [(k, l) for k, l in PEERS if k in peers]

    head = "| workload | graft | " + " | ".join(f"{l} | graft/{l}" for _, l in present) + " |"
    lines += [head, "|" + "---|" * (2 + 2 * len(present))]
    for name, label, kind in WORKLOADS:
        g = graft.get(name)
        row = f"| {label} | {fmt_value(g, kind)} |"
        for key, _ in present:
            p = peers[key].get(name)
            ratio = "-" if (g is None or p is None) else f"{p['seconds'] / g['seconds']:.2f}×"
            row += f" {fmt_value(p, kind)} | {ratio} |"
        lines.append(row)
    extra = [("W4_finetune_frozen2_cached_batch64", "W4 fine-tune, 2 frozen, features cached", "rate"),
             ("W1_train_step_batch64_threads2", "W1 training step, 2 threads", "rate"),
             ("W3_lenet_train_step_batch64_threads2", "W3 LeNet training step, 2 threads", "rate")]
    for name, label, kind in extra:
        g = graft.get(name)
        row = f"| {label} | {fmt_value(g, kind)} |"
        for key, _ in present:
            base = {"W4": "W4_finetune_frozen2_batch64", "W1": "W1_train_step_batch64",
                    "W3": "W3_lenet_train_step_batch64"}[name[:2]]
            p = peers[key].get(base)
            ratio = "-" if (g is None or p is None) else f"{p['seconds'] / g['seconds']:.2f}×"
            row += f" {fmt_value(p, kind)} | {ratio} |"
        lines.append(row)
    for w, one in [("W1", "W1_train_step_batch64"), ("W3", "W3_lenet_train_step_batch64")]:
        if one + "_threads2" in graft and one in graft:
            s = graft[one]["seconds"] / graft[one + "_threads2"]["seconds"]
            lines += ["", f"graft {w} with 2 threads / 1 thread: {s:.2f}×"]

    peak = graft.get("W5_fma_peak", {}).get("gflops")
    if peak:
        lines += ["", f"W5: single-core FMA peak {peak:.1f} GFLOP/s", "",
                  "| product | graft GFLOP/s | of peak | OpenBLAS GFLOP/s | graft/OpenBLAS |",
                  "|---|---|---|---|---|"]
        for name in ["W5_gemm_64x784x256", "W5_gemm_64x256x128", "W5_gemm_1x784x256",
                     "W5_dx_64x256x128", "W5_dw_784x64x256", "W5_gemm_64x784x256_threads2"]:
            g = graft.get(name)
            if g is None:
                continue
            o = peers.get("openblas", {}).get(name)
            ostr = f"{o['gflops']:.1f}" if o and o.get("gflops") else "-"
            ratio = f"{g['gflops'] / o['gflops']:.2f}×" if o and o.get("gflops") else "-"
            lines.append(f"| {name[3:]} | {g['gflops']:.1f} | {100 * g['gflops'] / peak:.0f}% | {ostr} | {ratio} |")

    # What the machine allows, from figures of this run: the W1 step's multiply-adds at the FMA
    # peak, and W2's batch-1 latency against reading the parameters once.
    torch = peers.get("torch", {})
    w1, w2 = graft.get("W1_train_step_batch64"), graft.get("W2_inference_batch1")
    read = graft.get("W5_read_mlp_parameters")
    dims = [(784, 256), (256, 128), (128, 10)]
    flops = 2 * sum(k * n for k, n in dims) * 2 + 2 * sum(k * n for k, n in dims[1:])
    if peak and w1:
        ceiling = peak * 1e9 / flops
        line = (f"W1 ceiling: a training step is {flops / 1e6:.3f} MFLOP per sample (forward, "
                f"weight gradients, input gradients of the upper two layers); at the FMA peak of "
                f"this run that is at most {fmt_rate(ceiling)}; graft reaches "
                f"{100 * w1['items_per_second'] / ceiling:.0f}% of it")
        t = torch.get("W1_train_step_batch64")
        if t:
            line += (f", and 2× LibTorch ({fmt_rate(2 * t['items_per_second'])}) would be "
                     f"{200 * t['items_per_second'] / ceiling:.0f}% of it")
        lines += ["", line + "."]
    if read and w2:
        line = (f"W2 floor: reading the MLP's parameters once takes {read['seconds'] * 1e6:.1f} µs "
                f"(W5_read_mlp_parameters); graft's batch-1 latency is {w2['seconds'] * 1e6:.1f} µs, "
                f"{100 * read['seconds'] / w2['seconds']:.0f}% of the read speed")
        t = torch.get("W2_inference_batch1")
        if t:
            line += f"; 1/8 of LibTorch's latency is {t['seconds'] * 1e6 / 8:.1f} µs"
        lines += ["", line + "."]

    lines += ["", "Minimal batch-1 inference program (bench/minimal_*.cpp):", "",
              "| program | compile time | stripped size | shared libraries loaded |", "|---|---|---|---|"]
    for key, label in [("graft", "graft")] + present:
        sub = "" if key == "graft" else "peers"
        binary = os.path.join(bench, sub, f"minimal_{key}")
        t, size = compile_and_size(a.build, f"minimal_{key}.cpp", binary)
        libs = shared_libraries(binary) if os.path.exists(binary) else None
        lines.append(f"| {label} | {t:.2f} s | {size / 1024:.1f} KiB | {libs / 1e6:.1f} MB |"
                     if t is not None else f"| {label} | - | - | - |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
