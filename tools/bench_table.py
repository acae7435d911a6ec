#!/usr/bin/env python3
"""Runs graft's and the peers' benchmark programs of one build and prints the ratio table.

    tools/bench_table.py [BUILD_DIR] [--repetitions ROUNDS] [--out FILE.md]
                         [--openblas-core auto|default|NAME] [--no-default-core] [--min-time S]
                         [--workloads REGEX]

Fair to the peers, and robust to a machine whose speed drifts:

- The peers run at their best: the OpenBLAS core (kernel set) that matches the CPU's instruction
  set is chosen from /proc/cpuinfo (Cooperlake with AVX-512 and AVX512-BF16, SkylakeX with
  AVX-512 F/BW/VL, Zen or Haswell with AVX2 and FMA) and set as OPENBLAS_CORETYPE in the
  environment of the peers' benchmark processes only (graft's processes get the environment as it
  is). Each peer prints the core it actually ran (openblas_get_corename(), in its JSON context);
  the OpenBLAS-based peers also run without the override, and the default-core figures get a table
  of their own. LibTorch reports whether its convolutions run through oneDNN and which BLAS its
  dense layers call.
- Interleaved rounds: each round runs, for each peer, graft's benchmarks of the workloads that the
  peer has and then the peer's (the other way round in odd rounds), so that the two runs of a
  comparison are seconds apart. A comparison is the median of its per-round ratios, with their
  spread (min-max over the rounds); the figures shown are medians over the rounds. Each round ends
  with a run of graft alone: its kernels, the FMA peak, and its 2-thread benchmarks next to their
  1-thread ones (the 2-thread rows compare with the peers' runs of the same round).
- Times: the CPU time of the benchmark thread for single-threaded benchmarks (time slices taken by
  other processes on a shared machine do not count), the wall time for graft's 2-thread
  benchmarks (whose second thread the CPU time of the main thread would not see).
- W5_fma_peak (graft's FMA-peak benchmark, native vectors, enough independent chains for two FMA
  ports) is the single-core peak; a warning line is printed if any GEMM of the run exceeds it.

graft's side comes from bench_mlp (W1-W5), bench_cnn (W6, the small ResNet with batch norm,
which only LibTorch has among the peers) and bench_text (W7, the text demo's char-CNN on token
inputs, and W8, the tiny transformer, LibTorch only; its W7u and W8u rows are the same layers
without padding masks, graft-only variants compared with LibTorch's W7 and W8); each graft run
runs the benchmarks of a round from the programs that have them, one after the other.
--workloads REGEX keeps only the benchmarks whose name matches (re.search), e.g. '^W7' for the W7
and W7u rows alone; the peers that have none of them are left out.

Ratios are graft's speed over the peer's (> 1: graft is faster). Also measures, for the minimal
batch-1 inference programs, the compile time (best of two runs of the compile command from
compile_commands.json) and the stripped size.
"""
import argparse
import json
import os
import re
import statistics
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
    ("W6_resnet_train_step_batch64", "W6 ResNet training step, batch 64", "rate"),
    ("W6_resnet_inference_batch1", "W6 ResNet inference, batch 1", "latency"),
    ("W7_charcnn_train_step_batch64", "W7 char-CNN training step, batch 64 (Adam)", "rate"),
    ("W7_charcnn_inference_batch1", "W7 char-CNN inference, batch 1", "latency"),
    ("W8_transformer_train_step_batch64", "W8 tiny transformer training step, batch 64 (Adam)",
     "rate"),
    ("W8_transformer_inference_batch1", "W8 tiny transformer inference, batch 1", "latency"),
]
# graft's benchmark programs in the build's bench/ directory; a benchmark name is run by the first
# program that has it (bench_mlp: W1-W5; bench_cnn: W6; bench_text: W7, W8)
GRAFT_PROGRAMS = ["bench_mlp", "bench_cnn", "bench_text"]
# graft-only variants compared with a peer's workload: (graft's benchmark, the peer's, label); a
# variant's figure is a rate or a latency as its peer workload's is
VARIANTS = [
    ("W4_finetune_frozen2_cached_batch64", "W4_finetune_frozen2_batch64",
     "W4, features cached (graft) vs the peers' W4"),
    ("W1_train_step_batch64_threads2", "W1_train_step_batch64", "W1 with 2 threads (graft) vs the peers' one"),
    ("W3_lenet_train_step_batch64_threads2", "W3_lenet_train_step_batch64",
     "W3 with 2 threads (graft) vs the peers' one"),
    ("W7u_charcnn_train_step_batch64", "W7_charcnn_train_step_batch64",
     "W7u, no masks (graft: every position computed) vs the peers' W7"),
    ("W7u_charcnn_inference_batch1", "W7_charcnn_inference_batch1",
     "W7u inference, no masks (graft) vs the peers' W7"),
    ("W8u_transformer_train_step_batch64", "W8_transformer_train_step_batch64",
     "W8u, no masks (graft: every position computed) vs the peers' W8"),
    ("W8u_transformer_inference_batch1", "W8_transformer_inference_batch1",
     "W8u inference, no masks (graft) vs the peers' W8"),
]
# W5 products: (graft's benchmark, OpenBLAS peer's benchmark or None, label)
GEMMS = [
    ("W5_gemm_64x784x256", "W5_gemm_64x784x256", "forward 64x784 · 784x256"),
    ("W5_gemm_64x256x128", "W5_gemm_64x256x128", "forward 64x256 · 256x128"),
    ("W5_gemm_1x784x256", "W5_gemv_784x256", "forward 1x784 · 784x256 (batch 1; OpenBLAS: `sgemv`)"),
    ("W5_dx_64x256x128", None, "input gradient 64x128 · (256x128)^T"),
    ("W5_dw_784x64x256", None, "weight gradient (64x784)^T · 64x256"),
    ("W5_gemm_64x784x256_threads2", None, "forward 64x784 · 784x256, 2 threads"),
]
PEAK = "W5_fma_peak"
READ = "W5_read_mlp_parameters"
# graft's own run of each round: the kernels, the peak, and the 2-thread benchmarks next to their
# 1-thread ones (2-thread runs are slow on a busy machine, so once per round only)
GRAFT_ONLY = [PEAK, READ, "W5_dx_64x256x128", "W5_dw_784x64x256", "W5_gemm_64x784x256_threads2",
              "W1_train_step_batch64", "W1_train_step_batch64_threads2",
              "W3_lenet_train_step_batch64", "W3_lenet_train_step_batch64_threads2"]
OPENBLAS_VARS = ("OPENBLAS_", "GOTO_", "OMP_NUM_THREADS")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the machine -----------------------------------------------------------------------------

def cpuinfo():
    info = {"model": "unknown CPU", "vendor": "", "family": "?", "model_id": "?", "flags": set()}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and info["model"] == "unknown CPU":
                info["model"] = value
            elif key == "vendor_id":
                info["vendor"] = value
            elif key == "cpu family":
                info["family"] = value
            elif key == "model":
                info["model_id"] = value
            elif key in ("flags", "Features") and not info["flags"]:
                info["flags"] = set(value.split())
    except OSError:
        pass
    try:  # lscpu's model name is the one people quote; /proc/cpuinfo's is the same on x86
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            info["model"] = m.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def isa_flags(flags):
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"]
    present = [f for f in wanted if f in flags]
    absent = [f for f in wanted if f not in flags]
    return " ".join(present) + (f" (no {' '.join(absent)})" if absent else "")


def pick_openblas_core(cpu):
    """The OpenBLAS core that matches the CPU's instruction set, and why; (None, why) if none."""
    f = cpu["flags"]
    if {"avx512f", "avx512bw", "avx512vl"} <= f:
        if "avx512_bf16" in f:
            return "Cooperlake", "AVX-512 F/BW/VL and AVX512-BF16"
        return "SkylakeX", "AVX-512 F/BW/VL"
    if {"avx2", "fma"} <= f:
        if cpu["vendor"] == "AuthenticAMD":
            return "Zen", "AVX2 and FMA, AMD"
        return "Haswell", "AVX2 and FMA"
    return None, "no AVX2: OpenBLAS's own choice is kept"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def cmake_cache(build, key):
    try:
        for line in open(os.path.join(build, "CMakeCache.txt")):
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


# ---- running the benchmark programs -----------------------------------------------------------

def list_benchmarks(exe, env):
    p = subprocess.run([exe, "--benchmark_list_tests"], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{exe} --benchmark_list_tests failed:\n{p.stderr}")
    return [l.strip() for l in p.stdout.splitlines() if l.strip()], p.stderr


def run_bench(exe, names, env, min_time):
    """One run of the benchmarks `names` of exe; returns (context, {name: measurement}).

    A measurement holds the seconds per iteration (CPU time of the benchmark thread, or wall time
    for _threads2 benchmarks), the items and FLOPs per iteration (from the rate counters, which
    Google Benchmark computes on CPU time) and the label."""
    if not names:
        return {}, {}
    cmd = [exe, "--benchmark_format=json", "--benchmark_filter=^(" + "|".join(map(re.escape, names)) + ")$"]
    if min_time:
        cmd.append(f"--benchmark_min_time={min_time}")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    data = json.loads(p.stdout)
    res = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        cpu, real = b["cpu_time"] * scale, b["real_time"] * scale
        seconds = real if "threads2" in b["name"] else cpu
        items = b.get("items_per_second")
        flops = b.get("GFLOP/s")
        res[b["name"]] = {"seconds": seconds, "cpu": cpu, "real": real,
                          "items": items * cpu if items else 1.0,
                          "flops": flops * cpu if flops else None,
                          "label": b.get("label", "")}
    return data.get("context", {}), res


def per_item(m):
    return m["seconds"] / m["items"]


def gflops(m):
    return m["flops"] / m["seconds"] / 1e9 if m and m.get("flops") else None


def median(xs):
    return statistics.median(xs) if xs else None


# ---- formatting -------------------------------------------------------------------------------

def fmt_rate(r):
    return f"{r / 1000:.1f}k/s" if r < 1e6 else f"{r / 1e6:.2f}M/s"


def fmt_value(seconds_per_item, kind):
    if seconds_per_item is None:
        return "-"
    if kind == "latency":
        return f"{seconds_per_item * 1e6:.1f} µs"
    return fmt_rate(1.0 / seconds_per_item)


def fmt_ratio(ratios):
    if not ratios:
        return "-"
    m, lo, hi = median(ratios), min(ratios), max(ratios)
    digits = 2 if hi < 10 else (1 if hi < 100 else 0)
    if len(ratios) == 1:
        return f"{m:.{digits}f}×"
    return f"{m:.{digits}f}× ({lo:.{digits}f}–{hi:.{digits}f})"


# ---- compile time and size of the minimal programs ----------------------------------------------

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


# ---- main ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--repetitions", "--rounds", dest="rounds", type=int, default=5,
                    help="interleaved rounds (default 5)")
    ap.add_argument("--openblas-core", default="auto",
                    help="OPENBLAS_CORETYPE for the peers: auto (from the CPU flags), default (no "
                         "override) or a core name")
    ap.add_argument("--no-default-core", action="store_true",
                    help="skip the peers' runs on OpenBLAS's default core")
    ap.add_argument("--min-time", type=float, default=None,
                    help="--benchmark_min_time of every run (Google Benchmark's default if unset)")
    ap.add_argument("--skip-minimal", action="store_true",
                    help="skip the minimal programs' compile times and sizes")
    ap.add_argument("--workloads", default=None,
                    help="keep only the benchmarks whose name matches this regular expression "
                         "(re.search), e.g. '^W7'")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.workloads:
        keep = re.compile(a.workloads).search
        WORKLOADS[:] = [w for w in WORKLOADS if keep(w[0])]
        VARIANTS[:] = [v for v in VARIANTS if keep(v[0]) and keep(v[1])]  # and its peer workload
        GEMMS[:] = [gm for gm in GEMMS if keep(gm[0])]
        GRAFT_ONLY[:] = [n for n in GRAFT_ONLY if keep(n)]
    bench = os.path.join(a.build, "bench")
    graft_exes = [os.path.join(bench, p) for p in GRAFT_PROGRAMS]

    cpu = cpuinfo()
    load_start = loadavg()
    lines = []
    notes = []  # printed as they happen (stderr) and kept for the table's header

    def note(msg):
        log(msg)
        notes.append(msg)

    # The environments: graft's is the caller's, unchanged; the peers' gets OPENBLAS_CORETYPE.
    graft_env = dict(os.environ)
    env_vars = {k: v for k, v in os.environ.items() if k.startswith(OPENBLAS_VARS)}
    if a.openblas_core == "auto":
        core, why = pick_openblas_core(cpu)
    elif a.openblas_core == "default":
        core, why = None, "--openblas-core default"
    else:
        core, why = a.openblas_core, "--openblas-core"
    peer_env = dict(os.environ)
    default_env = dict(os.environ)
    default_env.pop("OPENBLAS_CORETYPE", None)
    if env_vars:
        note("OpenBLAS variables in the environment: " +
             ", ".join(f"{k}={v}" for k, v in sorted(env_vars.items())) + ".")
    else:
        note("No OpenBLAS variables in the environment (`env | grep -i openblas` is empty).")
    if core:
        peer_env["OPENBLAS_CORETYPE"] = core
        was = os.environ.get("OPENBLAS_CORETYPE")
        note(f"OPENBLAS_CORETYPE={core} ({why}) is set only in the environment of the peers' benchmark "
             f"processes" + (f", overriding the environment's OPENBLAS_CORETYPE={was} there" if was else "")
             + "; graft's processes run with the environment unchanged. The default-core runs of the "
             "peers run without OPENBLAS_CORETYPE.")
    else:
        note(f"OPENBLAS_CORETYPE is not overridden ({why}).")

    # What each program has, and which peers run OpenBLAS (their stderr names the core).
    if not any(os.path.exists(exe) for exe in graft_exes):
        sys.exit(f"none of {', '.join(graft_exes)} found: build the release preset first")
    graft_program = {}  # benchmark name -> the graft program that runs it
    for exe in graft_exes:
        if not os.path.exists(exe):
            note(f"WARNING: {exe} not found: its workloads have no graft figures")
            continue
        for n in list_benchmarks(exe, graft_env)[0]:
            graft_program.setdefault(n, exe)
    graft_names = list(graft_program)
    wanted = {n for n, _, _ in WORKLOADS} | {p for _, p, _ in GEMMS if p}
    peers = []  # (key, label, exe, names, uses_openblas)
    for key, label in PEERS:
        exe = os.path.join(bench, "peers", f"bench_peer_{key}")
        if not os.path.exists(exe):
            continue
        try:
            names, err = list_benchmarks(exe, peer_env)
        except RuntimeError as e:
            note(f"WARNING: {label} skipped: {e}")
            continue
        names = [n for n in names if n in wanted]
        if a.workloads and not names:
            continue  # none of the workloads asked for
        peers.append((key, label, exe, names, "OpenBLAS core" in err))

    def graft_filter(peer_names):
        names = [n for n in peer_names if n in graft_names]
        names += [v for v, base, _ in VARIANTS
                  if base in peer_names and v in graft_names and "threads2" not in v]
        names += [g for g, p, _ in GEMMS if p in peer_names and g in graft_names]
        if any(n.startswith("W5_gemm") for n in peer_names) and PEAK in graft_names:
            names.append(PEAK)  # the peak next to OpenBLAS's sgemm
        return list(dict.fromkeys(names))

    # samples[(who, variant)][name] = list of (round, measurement); pairs[(key, variant)][name] =
    # list of (graft measurement, peer measurement) of the same round.
    graft_runs = []  # (round, results) of every graft run
    peer_samples = {}
    pairs = {}
    contexts = {}
    failures = []

    def run_graft(names):
        """graft's benchmarks `names`: one run of each graft program that has some of them, one
        after the other; the merged results (a program that fails is left out and reported)."""
        res = {}
        for exe in graft_exes:
            mine = [n for n in names if graft_program.get(n) == exe]
            if not mine:
                continue
            try:
                res.update(run_bench(exe, mine, graft_env, a.min_time)[1])
            except RuntimeError as e:
                failures.append(str(e))
                log(f"WARNING: {e}")
        return res

    for r in range(a.rounds):
        log(f"round {r + 1}/{a.rounds} (load average {loadavg()})")
        order = peers if r % 2 == 0 else list(reversed(peers))
        for key, label, exe, names, uses_openblas in order:
            variants = [("best", peer_env)]
            if uses_openblas and core and not a.no_default_core:
                variants.append(("default", default_env))
            steps = [("graft", None)] + variants if r % 2 == 0 else variants + [("graft", None)]
            g = None
            got = {}
            for who, env in steps:
                try:
                    if who == "graft":
                        log(f"  graft ({label}'s workloads)")
                        g = run_graft(graft_filter(names))
                        graft_runs.append((r, g))
                    else:
                        log(f"  {label}" + (" (OpenBLAS default core)" if who == "default" else ""))
                        ctx, res = run_bench(exe, names, env, a.min_time)
                        contexts.setdefault((key, who), []).append(ctx)
                        got[who] = res
                except RuntimeError as e:
                    failures.append(str(e))
                    log(f"WARNING: {e}")
            for who, res in got.items():
                for name, m in res.items():
                    peer_samples.setdefault((key, who), {}).setdefault(name, []).append((r, m))
                if g is None:
                    continue
                for name, m in res.items():
                    gnames = [name] + [v for v, base, _ in VARIANTS if base == name and "threads2" not in v] + \
                        [gg for gg, p, _ in GEMMS if p == name]
                    for gname in dict.fromkeys(gnames):
                        if gname in g:
                            pairs.setdefault((key, who), {}).setdefault((gname, name), []).append((g[gname], m))
        log("  graft (its kernels, the FMA peak, 2 threads)")
        g = run_graft([n for n in GRAFT_ONLY if n in graft_names])
        if not g:
            continue
        graft_runs.append((r, g))
        # the 2-thread variants against the peers' runs of this round
        for (key, who), samples in peer_samples.items():
            for v, base, _ in VARIANTS:
                if "threads2" not in v or v not in g:
                    continue
                for rr, m in samples.get(base, []):
                    if rr == r:
                        pairs.setdefault((key, who), {}).setdefault((v, base), []).append((g[v], m))
    load_end = loadavg()

    def graft_all(name):
        return [m for _, res in graft_runs for n, m in res.items() if n == name]

    def graft_median(name):
        return median([per_item(m) for m in graft_all(name)])

    def peer_median(key, who, name):
        return median([per_item(m) for _, m in peer_samples.get((key, who), {}).get(name, [])])

    def ratios(key, who, gname, pname):
        return [per_item(p) / per_item(g) for g, p in pairs.get((key, who), {}).get((gname, pname), [])]

    def cores(key, who):
        return sorted({c.get("openblas_core", "?") for c in contexts.get((key, who), [])})

    present = [(k, l) for k, l, _, _, _ in peers]
    peak = median([gflops(m) for m in graft_all(PEAK)])
    peak_label = next((m["label"] for m in graft_all(PEAK) if m["label"]), "")

    # ---- header ----
    lines.append(f"Machine: {cpu['model']} (vendor {cpu['vendor'] or '?'}, family {cpu['family']}, "
                 f"model {cpu['model_id']}), {os.cpu_count()} cores; flags: {isa_flags(cpu['flags'])}. "
                 f"graft built with -march={cmake_cache(a.build, 'GRAFT_ARCH') or '?'}"
                 + (f" (vectors: {peak_label})" if peak_label else "") + ".")
    lines.append("")
    lines.append(f"{a.rounds} interleaved round{'s' if a.rounds != 1 else ''} (each round visits the peers, in reverse order in odd "
                 f"rounds, and runs graft's benchmarks of that peer's workloads next to the peer's, the "
                 f"peer first in odd rounds; graft's kernels, FMA peak and 2-thread benchmarks in a run of "
                 f"their own at the end of each round); figures are medians over the rounds, ratios are the median of the per-round "
                 f"ratios graft's speed / the peer's (> 1: graft faster) with their min–max in brackets. "
                 f"One thread unless noted; times are CPU time of the benchmark thread (wall time for "
                 f"2-thread rows)" + (f", --benchmark_min_time={a.min_time}" if a.min_time else "") +
                 f". Load average {load_start} at the start, {load_end} at the end.")
    lines.append("")
    blas_lines = []
    for key, label, _, _, uses in peers:
        if not uses:
            continue
        best, default = cores(key, "best"), cores(key, "default")
        s = f"{label}: OpenBLAS core {', '.join(best)}"
        if core and best != [core]:
            s += f" (WARNING: {core} was asked for)"
        if default:
            s += f"; default core (no override) {', '.join(default)}"
        blas_lines.append(s)
    no_blas = [label for key, label, _, _, uses in peers if not uses]
    if blas_lines:
        lines.append("OpenBLAS cores the peers ran (`openblas_get_corename()` in each peer process): "
                     + "; ".join(blas_lines) + "." + (f" No OpenBLAS in {', '.join(no_blas)}." if no_blas else ""))
        lines.append("")
    tctx = (contexts.get(("torch", "best")) or [{}])[0]
    if tctx.get("torch_onednn"):
        lines.append(f"LibTorch: oneDNN {tctx['torch_onednn']}; dense layers' BLAS: {tctx.get('torch_blas', '?')} "
                     f"(OpenBLAS, core as above).")
        lines.append("")
    lines += [n if n.endswith(".") else n + "." for n in notes]
    lines.append("")

    # ---- main table ----
    head = "| workload | graft | " + " | ".join(f"{l} | graft/{l}" for _, l in present) + " |"
    lines += [head, "|" + "---|" * (2 + 2 * len(present))]
    for name, label, kind in WORKLOADS:
        row = f"| {label} | {fmt_value(graft_median(name), kind)} |"
        for key, _ in present:
            row += f" {fmt_value(peer_median(key, 'best', name), kind)} | {fmt_ratio(ratios(key, 'best', name, name))} |"
        lines.append(row)
    for gname, base, label in VARIANTS:
        if gname not in graft_names:
            continue
        kind = next((k for n, _, k in WORKLOADS if n == base), "rate")
        row = f"| {label} | {fmt_value(graft_median(gname), kind)} |"
        for key, _ in present:
            row += f" {fmt_value(peer_median(key, 'best', base), kind)} | {fmt_ratio(ratios(key, 'best', gname, base))} |"
        lines.append(row)
    for w, one in [("W1", "W1_train_step_batch64"), ("W3", "W3_lenet_train_step_batch64")]:
        # 2 threads / 1 thread within each graft run that has both (wall time for both here)
        s = [res[one]["real"] / res[one]["items"] / (res[one + "_threads2"]["real"] / res[one + "_threads2"]["items"])
             for _, res in graft_runs if one in res and one + "_threads2" in res]
        if s:
            lines += ["", f"graft {w} with 2 threads / 1 thread (wall times, same process): {fmt_ratio(s)} "
                          f"over {len(s)} runs."]

    # ---- the default-core table ----
    dpeers = [(k, l) for k, l, _, _, uses in peers if uses and (k, "default") in peer_samples]
    if dpeers:
        lines += ["", "The OpenBLAS-based peers with and without the override (default core: no "
                      "OPENBLAS_CORETYPE; same rounds, each against the same graft run):", "",
                  "| peer | workload | core set by the bench | graft/peer | OpenBLAS's default core | graft/peer |",
                  "|---|---|---|---|---|---|"]
        rows = [(n, l, kd) for n, l, kd in WORKLOADS] + [(p, f"W5 {p[3:]}, GFLOP/s", "gflops")
                                                         for _, p, _ in GEMMS if p]
        for k, l in dpeers:
            for name, label, kind in rows:
                if name not in peer_samples.get((k, "best"), {}):
                    continue
                row = f"| {l} | {label} |"
                for who in ("best", "default"):
                    c = ", ".join(cores(k, who))
                    if kind == "gflops":
                        v = median([gflops(m) for _, m in peer_samples.get((k, who), {}).get(name, [])])
                        g = [gg for gg, p, _ in GEMMS if p == name][0]
                        row += f" {c}: {v:.1f} | {fmt_ratio(ratios(k, who, g, name))} |" if v else " - | - |"
                    else:
                        row += (f" {c}: {fmt_value(peer_median(k, who, name), kind)} | "
                                f"{fmt_ratio(ratios(k, who, name, name))} |")
                lines.append(row)
        same = [l for k, l in dpeers if cores(k, "default") == cores(k, "best")]
        if same:
            lines += ["", f"OpenBLAS picks the same core by itself for {', '.join(same)} on this CPU: there the "
                          "two columns are one configuration measured twice (their gap is the run-to-run noise)."]

    # ---- W5 and the peak ----
    warnings = []
    if peak:
        lines += ["", f"Kernels (W5), single-core FMA peak measured by `W5_fma_peak` in the same rounds: "
                      f"{peak:.1f} GFLOP/s ({peak_label}; median of {len(graft_all(PEAK))} runs, "
                      f"{min(gflops(m) for m in graft_all(PEAK)):.1f}–{max(gflops(m) for m in graft_all(PEAK)):.1f}).", ""]
        ob = "openblas" if ("openblas", "best") in peer_samples else None
        obcore = ", ".join(cores("openblas", "best")) if ob else ""
        lines += [f"| product | graft GFLOP/s | of peak | OpenBLAS ({obcore}) GFLOP/s | graft/OpenBLAS |",
                  "|---|---|---|---|---|"]
        for gname, pname, label in GEMMS:
            gs = [gflops(m) for m in graft_all(gname)]
            if not gs:
                continue
            gv = median(gs)
            cores_n = 2 if "threads2" in gname else 1
            ov = median([gflops(m) for _, m in peer_samples.get(("openblas", "best"), {}).get(pname, [])]) if pname else None
            rat = fmt_ratio(ratios("openblas", "best", gname, pname)) if pname and ov else "-"
            of = f"{100 * gv / peak:.0f}%" + (" of 2 cores" if cores_n == 2 else "")
            lines.append(f"| {label} | {gv:.1f} | {of} | {f'{ov:.1f}' if ov else '-'} | {rat} |")
            if gv > cores_n * peak:
                warnings.append(f"graft's {gname} ({gv:.1f} GFLOP/s)")
            for who in ("best", "default"):
                if not pname or not pname.startswith("W5_gemm"):
                    continue
                v = median([gflops(m) for _, m in peer_samples.get(("openblas", who), {}).get(pname, [])])
                if v and v > peak:
                    which = "OpenBLAS's default core" if who == "default" else "core"
                    warnings.append(f"OpenBLAS's {pname} on {which} {', '.join(cores('openblas', who))} ({v:.1f} GFLOP/s)")
        # per round: a GEMM above the peak measured in the same graft process / round
        over = 0
        for r, res in graft_runs:
            if PEAK in res:
                p = gflops(res[PEAK])
                over += sum(1 for n, m in res.items() if n.startswith("W5_") and n != PEAK and "threads2" not in n
                            and m.get("flops") and gflops(m) > p)
        if warnings:
            lines += ["", "WARNING: above the measured FMA peak: " + "; ".join(warnings) +
                      ". Either W5_fma_peak does not reach this machine's peak or the run was too noisy."]
        else:
            lines += ["", f"Check: no GEMM of this run exceeds the FMA peak ({peak:.1f} GFLOP/s)."]
        if over:
            lines.append(f"(In {over} single graft runs a product measured above the peak of the same run.)")

    # ---- what the machine allows ----
    torch_w1 = peer_median("torch", "best", "W1_train_step_batch64")
    torch_w2 = peer_median("torch", "best", "W2_inference_batch1")
    w1, w2 = graft_median("W1_train_step_batch64"), graft_median("W2_inference_batch1")
    read = median([m["seconds"] for m in graft_all(READ)])
    dims = [(784, 256), (256, 128), (128, 10)]
    flops = 2 * sum(k * n for k, n in dims) * 2 + 2 * sum(k * n for k, n in dims[1:])
    if peak and w1:
        ceiling = peak * 1e9 / flops
        line = (f"W1 ceiling: a training step is {flops / 1e6:.3f} MFLOP per sample (forward, "
                f"weight gradients, input gradients of the upper two layers); at the FMA peak of "
                f"this run that is at most {fmt_rate(ceiling)}; graft reaches "
                f"{100 / w1 / ceiling:.0f}% of it")
        if torch_w1:
            line += (f", and 2× LibTorch ({fmt_rate(2 / torch_w1)}) would be "
                     f"{200 / torch_w1 / ceiling:.0f}% of it")
        lines += ["", line + "."]
    if read and w2:
        line = (f"W2 floor: reading the MLP's parameters once takes {read * 1e6:.1f} µs "
                f"({READ}); graft's batch-1 latency is {w2 * 1e6:.1f} µs, "
                f"{100 * read / w2:.0f}% of the read speed")
        if torch_w2:
            line += f"; 1/8 of LibTorch's latency is {torch_w2 * 1e6 / 8:.1f} µs"
        lines += ["", line + "."]
    if failures:
        lines += ["", f"{len(failures)} run(s) failed and are left out (see stderr)."]

    # ---- minimal programs ----
    if not a.skip_minimal:
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
