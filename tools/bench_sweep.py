#!/usr/bin/env python3
"""How cost grows with the work: graft, LibTorch and a hand-written OpenBLAS MLP over a sweep of the
MLP 784-H-H-10's hidden width (batch 64) and batch (width 256), training step and inference.

    tools/bench_sweep.py [BUILD_DIR] [--rounds N] [--min-time S] [--openblas-core auto|default|NAME]
                         [--out build/sweep.md] [--svg docs/sweep.svg] [--raw build/sweep.json]
    tools/bench_sweep.py --from build/sweep.json [--out ...] [--svg ...]   (no run: report again)

Runs bench/sweep's three programs (bench_sweep_graft, bench_sweep_torch, bench_sweep_openblas, the
same benchmark names in each; a peer that was not built is left out) in interleaved rounds: graft,
LibTorch, OpenBLAS, then again, N rounds (default 3), so that the runs compared are seconds apart.
Times are the CPU time of the benchmark thread (everything runs on one thread); a figure is the
median over the rounds and a ratio graft/peer (> 1: graft faster) is the median of the per-round
ratios, with their min-max.

The peers' processes (only they) get OPENBLAS_CORETYPE for this CPU's instruction set, chosen as
tools/bench_table.py chooses it (its function is imported); each peer reports the core it ran.
graft's program also measures the single-core FMA peak, against which the GFLOP/s of every point
are given (the FLOPs of a sample: forward 2*(784H + H*H + 10H); a training step adds the weight
gradients, as many again, and the input gradients of the two upper layers, 2*(H*H + 10H)).

Writes a markdown report (tables per width and per batch: samples/s, ratios, GFLOP/s, and where
the ratios cross 1), an SVG chart in the style of the demo's curves (examples/support/svg_plot.hpp):
samples/s, the ratios and the share of the FMA peak against the width and against the batch, and
the raw per-round figures as JSON (--raw), from which --from writes the report and chart again.
"""
import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_table  # noqa: E402  (the machine and the OpenBLAS core, as `./run bench` picks them)

IN, OUT = 784, 10
WIDTHS, WIDTH_BATCH = [64, 128, 256, 512, 1024, 2048], 64
BATCHES, BATCH_WIDTH = [1, 4, 16, 64, 256], 256
MODES = [("train", "training step"), ("infer", "inference")]
PROGRAMS = [("graft", "graft", "bench_sweep_graft"),
            ("torch", "LibTorch", "bench_sweep_torch"),
            ("openblas", "OpenBLAS by hand", "bench_sweep_openblas")]
PRODUCTS = [("fwd", "forward X·W"), ("dw", "weight gradient Xᵀ·dY"), ("dx", "input gradient dY·Wᵀ")]
PEAK = "sweep_fma_peak"
# the demo's palette (examples/transfer.cpp)
COLORS = {"graft": "#1f77b4", "torch": "#d62728", "openblas": "#2ca02c"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def name(mode, h, b):
    return f"sweep_{mode}_h{h}_b{b}"


def points():
    """Every (h, b) of the grid once, as bench/sweep/sweep_common.hpp lists them."""
    return [(h, WIDTH_BATCH) for h in WIDTHS] + [(BATCH_WIDTH, b) for b in BATCHES if b != WIDTH_BATCH]


def gemm_name(product, h):
    return f"sweep_gemm_{product}_h{h}_b{WIDTH_BATCH}"


def flops_per_sample(mode, h):
    fwd = 2 * (IN * h + h * h + h * OUT)
    return fwd if mode == "infer" else 2 * fwd + 2 * (h * h + h * OUT)


def run(exe, env, min_time):
    """One run of every benchmark of exe: (context, {name: samples/s, GFLOP/s for the products,
    (GFLOP/s, label) for the peak})."""
    cmd = [exe, "--benchmark_format=json"]
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
        cpu = b["cpu_time"] * scale  # seconds per iteration, CPU time of the benchmark thread
        if b["name"] == PEAK:
            res[PEAK] = (b["GFLOP/s"] / 1e9, b.get("label", ""))
        elif b["name"].startswith("sweep_gemm_"):
            res[b["name"]] = b["GFLOP/s"] / 1e9  # a rate as well: graft/peer > 1 when graft is faster
        else:
            # items/s is computed on CPU time; samples per iteration = items/s * cpu
            res[b["name"]] = b["items_per_second"]
    return data.get("context", {}), res


# ---- formatting -------------------------------------------------------------------------------

def fmt_rate(r):
    if r is None:
        return "-"
    if r >= 1e6:
        return f"{r / 1e6:.2f}M/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f}k/s"
    return f"{r:.0f}/s"


def fmt_ratio(rs):
    if not rs:
        return "-"
    m, lo, hi = statistics.median(rs), min(rs), max(rs)
    if len(rs) == 1:
        return f"{m:.2f}×"
    return f"{m:.2f}× ({lo:.2f}–{hi:.2f})"


def fmt_time(seconds):
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


# ---- the chart ----------------------------------------------------------------------------------

def svg_chart(path, title, panels, legend, height):
    """panels: list of dicts (x, y, w, h, title, xlabel, ylabel, xticks, yticks, ylo, yhi,
    ylog, series=[(color, dashed, [(x, y), ...])], hline=None); the x axis is logarithmic, the y
    axis too if ylog. legend: [(color, dashed, label)]."""
    W, H = 1060, height
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' "
           f"font-size='13'>", "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{(W - 180) / 2:.0f}' y='24' text-anchor='middle' font-size='15'>{title}</text>"]
    for p in panels:
        l, t, w, h = p["x"], p["y"], p["w"], p["h"]
        x0, x1 = math.log(p["xticks"][0][0]), math.log(p["xticks"][-1][0])
        fy = math.log if p["ylog"] else (lambda v: v)
        y0, y1 = fy(p["ylo"]), fy(p["yhi"])

        def X(v):
            return l + (math.log(v) - x0) / (x1 - x0) * w

        def Y(v):
            return t + h - (fy(v) - y0) / (y1 - y0) * h

        out.append(f"<text x='{l + w / 2:.1f}' y='{t - 8:.1f}' text-anchor='middle'>{p['title']}</text>")
        for v, lab in p["yticks"]:
            out.append(f"<line x1='{l:.1f}' y1='{Y(v):.1f}' x2='{l + w:.1f}' y2='{Y(v):.1f}' stroke='#ddd'/>")
            out.append(f"<text x='{l - 6:.1f}' y='{Y(v) + 4:.1f}' text-anchor='end'>{lab}</text>")
        for v, lab in p["xticks"]:
            out.append(f"<line x1='{X(v):.1f}' y1='{t + h:.1f}' x2='{X(v):.1f}' y2='{t:.1f}' stroke='#eee'/>")
            out.append(f"<text x='{X(v):.1f}' y='{t + h + 18:.1f}' text-anchor='middle'>{lab}</text>")
        if p.get("hline"):
            out.append(f"<line x1='{l:.1f}' y1='{Y(p['hline']):.1f}' x2='{l + w:.1f}' y2='{Y(p['hline']):.1f}' "
                       f"stroke='#333' stroke-width='1.5'/>")
        out.append(f"<rect x='{l:.1f}' y='{t:.1f}' width='{w:.1f}' height='{h:.1f}' fill='none' stroke='#333'/>")
        out.append(f"<text x='{l + w / 2:.1f}' y='{t + h + 38:.1f}' text-anchor='middle'>{p['xlabel']}</text>")
        cy = t + h / 2
        out.append(f"<text x='{l - 52:.1f}' y='{cy:.1f}' text-anchor='middle' "
                   f"transform='rotate(-90 {l - 52:.1f} {cy:.1f})'>{p['ylabel']}</text>")
        for color, dashed, pts in p["series"]:
            pts = [(x, y) for x, y in pts if y is not None]
            if not pts:
                continue
            dash = " stroke-dasharray='7,4'" if dashed else ""
            coords = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
            out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2.5'{dash} points='{coords}'/>")
            for x, y in pts:
                out.append(f"<circle cx='{X(x):.1f}' cy='{Y(y):.1f}' r='3.5' fill='{color}'/>")
    lx = W - 180
    for k, (color, dashed, label) in enumerate(legend):
        ly = 70 + 24 * k
        dash = " stroke-dasharray='7,4'" if dashed else ""
        if color:
            out.append(f"<line x1='{lx:.1f}' y1='{ly:.1f}' x2='{lx + 30:.1f}' y2='{ly:.1f}' stroke='{color}' "
                       f"stroke-width='2.5'{dash}/>")
        out.append(f"<text x='{lx + 37:.1f}' y='{ly + 4:.1f}'>{label}</text>")
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def log_ticks(lo, hi, steps, fmt):
    """Ticks at steps (e.g. 1, 2, 5) times powers of ten within [lo, hi]."""
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for s in steps:
            v = s * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                ticks.append((v, fmt(v)))
        e += 1
    return ticks


def rate_label(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M/s"
    if v >= 1e3:
        return f"{v / 1e3:g}k/s"
    return f"{v:g}/s"


# ---- main ---------------------------------------------------------------------------------------

def collect(a):
    """Runs the rounds; returns the raw results (what --raw saves and --from reads)."""
    bench = os.path.join(a.build, "bench", "sweep")
    cpu = bench_table.cpuinfo()
    load_start = bench_table.loadavg()
    if a.openblas_core == "auto":
        core, why = bench_table.pick_openblas_core(cpu)
    elif a.openblas_core == "default":
        core, why = None, "--openblas-core default"
    else:
        core, why = a.openblas_core, "--openblas-core"
    graft_env = dict(os.environ)
    peer_env = dict(os.environ)
    if core:
        peer_env["OPENBLAS_CORETYPE"] = core
        core_note = (f"OPENBLAS_CORETYPE={core} ({why}) in the peers' processes only; graft's process runs "
                     f"with the environment unchanged")
    else:
        core_note = f"OPENBLAS_CORETYPE not set by the sweep ({why})"
    machine = (f"Machine: {cpu['model']} (vendor {cpu['vendor'] or '?'}, family {cpu['family']}, model "
               f"{cpu['model_id']}), {os.cpu_count()} cores; flags: {bench_table.isa_flags(cpu['flags'])}; "
               f"graft built with -march={bench_table.cmake_cache(a.build, 'GRAFT_ARCH') or '?'}.")
    log(machine)
    log(core_note + ".")

    programs = []  # (key, label, exe, env)
    for key, label, exe_name in PROGRAMS:
        exe = os.path.join(bench, exe_name)
        if os.path.exists(exe):
            programs.append((key, label, exe, graft_env if key == "graft" else peer_env))
        elif key == "graft":
            sys.exit(f"{exe} not found: build the target bench_sweep_graft first")
        else:
            log(f"{exe} not found: {label} left out")

    rounds = []  # per round: {program: {benchmark: samples/s}}, kept per round for the ratios
    contexts = {}
    peaks = []
    failures = []
    for r in range(a.rounds):
        log(f"round {r + 1}/{a.rounds} (load average {bench_table.loadavg()})")
        this = {}
        for key, label, exe, env in programs:
            log(f"  {label}")
            try:
                ctx, res = run(exe, env, a.min_time)
            except RuntimeError as e:
                failures.append(str(e))
                log(f"WARNING: {e}")
                continue
            contexts.setdefault(key, []).append(ctx)
            if PEAK in res:
                peaks.append(res.pop(PEAK))
            this[key] = res
        rounds.append(this)
    load_end = bench_table.loadavg()

    return {"machine": machine, "core_note": core_note,
            "cpu": {k: cpu[k] for k in ("model", "vendor", "family", "model_id")},
            "present": [[k, l] for k, l, _, _ in programs], "rounds": rounds, "contexts": contexts,
            "peaks": peaks, "failures": failures, "load_start": load_start, "load_end": load_end,
            "date": datetime.date.today().isoformat(), "min_time": a.min_time}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="--benchmark_min_time of every run (Google Benchmark's default if unset)")
    ap.add_argument("--openblas-core", default="auto",
                    help="OPENBLAS_CORETYPE for the peers: auto (from the CPU flags, as "
                         "tools/bench_table.py), default (no override) or a core name")
    ap.add_argument("--out", default="build/sweep.md")
    ap.add_argument("--svg", default="docs/sweep.svg")
    ap.add_argument("--raw", default="build/sweep.json",
                    help="where to save the raw per-round results (empty: not saved)")
    ap.add_argument("--from", dest="from_raw",
                    help="write the report and the chart from a saved --raw file instead of running")
    a = ap.parse_args()

    if a.from_raw:
        with open(a.from_raw) as f:
            raw = json.load(f)
    else:
        raw = collect(a)
        if a.raw:
            os.makedirs(os.path.dirname(os.path.abspath(a.raw)), exist_ok=True)
            with open(a.raw, "w") as f:
                json.dump(raw, f, indent=1)
    machine, core_note, cpu = raw["machine"], raw["core_note"], raw["cpu"]
    rounds, contexts, failures = raw["rounds"], raw["contexts"], raw["failures"]
    peaks = [tuple(p) for p in raw["peaks"]]
    load_start, load_end, min_time = raw["load_start"], raw["load_end"], raw["min_time"]
    present = [tuple(p) for p in raw["present"]]
    peers = [(k, l) for k, l in present if k != "graft"]

    def rates(key, n):
        return [rd[key][n] for rd in rounds if key in rd and n in rd[key]]

    def rate(key, n):
        xs = rates(key, n)
        return statistics.median(xs) if xs else None

    def ratios(key, n):
        return [rd["graft"][n] / rd[key][n] for rd in rounds
                if "graft" in rd and key in rd and n in rd["graft"] and n in rd[key]]

    def ratio(key, n):
        xs = ratios(key, n)
        return statistics.median(xs) if xs else None

    peak = statistics.median([p for p, _ in peaks]) if peaks else None
    peak_label = peaks[0][1] if peaks else ""

    def gflops(key, mode, h, b):
        r = rate(key, name(mode, h, b))
        return r * flops_per_sample(mode, h) / 1e9 if r else None

    def fmt_gflops(key, mode, h, b):
        g = gflops(key, mode, h, b)
        if g is None:
            return "-"
        return f"{g:.1f}" + (f" ({100 * g / peak:.0f}%)" if peak else "")

    def fmt_gf(g):
        if g is None:
            return "-"
        return f"{g:.1f}" + (f" ({100 * g / peak:.0f}%)" if peak else "")

    def cores(key):
        return sorted({c.get("openblas_core", "?") for c in contexts.get(key, [])})

    # ---- the report ----
    lines = ["# How cost grows with the work: MLP 784-H-H-10, graft vs LibTorch vs OpenBLAS by hand", ""]
    lines.append(machine)
    lines.append("")
    blas = "; ".join(f"{l}: OpenBLAS core {', '.join(cores(k))}" for k, l in peers)
    lines.append(core_note + (f". Cores the peers ran (`openblas_get_corename()`): {blas}" if blas else "") + ".")
    gctx = (contexts.get("graft") or [{}])[0]
    tctx = (contexts.get("torch") or [{}])[0]
    octx = (contexts.get("openblas") or [{}])[0]
    lines.append("")
    lines.append(f"Versions: graft ({gctx.get('simd', '?')} vectors); "
                 f"{tctx.get('peer', 'LibTorch')} ({tctx.get('peer_threads', '?')}, sgemm_ from "
                 f"{tctx.get('torch_sgemm', '?')}); {octx.get('peer', 'OpenBLAS').strip()}. One thread each.")
    lines.append("")
    lines.append(f"{len(rounds)} interleaved round{'s' if len(rounds) != 1 else ''} ("
                 + ", ".join(l for _, l in present) + " in each); figures are medians over the rounds, "
                 f"ratios the median of the per-round ratios graft/peer (> 1: graft faster) with their "
                 f"min–max; CPU time of the benchmark thread"
                 + (f", --benchmark_min_time={min_time}" if min_time else "")
                 + f". Load average {load_start} at the start, {load_end} at the end; {raw['date']}.")
    if peak:
        lines.append("")
        lines.append(f"Single-core FMA peak (graft's `sweep_fma_peak`, {peak_label}): {peak:.1f} GFLOP/s "
                     f"(median of {len(peaks)}); GFLOP/s columns give the share of it in brackets. FLOPs per "
                     f"sample: inference 2(784H + H² + 10H), training twice that plus 2(H² + 10H).")
    lines.append("")
    lines.append("graft's training step runs with its finiteness checks on, as by default and as W1 (the "
                 "gradients and the updated parameters are checked, and the update keeps what it needs to "
                 "undo itself); \"graft, checks off\" is the same step with `check_finite(false)`, for "
                 "what the checks cost (the peers check nothing). Ratios are always the default step's.")

    def table(mode, sweep):
        if sweep == "width":
            keys = [(h, WIDTH_BATCH) for h in WIDTHS]
            head = f"| H (batch {WIDTH_BATCH}) |"
        else:
            keys = [(BATCH_WIDTH, b) for b in BATCHES]
            head = f"| batch (H = {BATCH_WIDTH}) |"
        unchecked = mode == "train" and any(rate("graft", name(mode, h, b) + "_unchecked") for h, b in keys)
        cols = ["graft"] + (["graft, checks off"] if unchecked else []) + [l for _, l in peers] + \
               [f"graft/{l}" for _, l in peers] + ["GFLOP/s graft"] + [f"GFLOP/s {l}" for _, l in peers]
        out = [head + " " + " | ".join(cols) + " |", "|" + "---|" * (1 + len(cols))]
        for h, b in keys:
            n = name(mode, h, b)
            row = [f"{h if sweep == 'width' else b}", fmt_rate(rate("graft", n))]
            if unchecked:
                row.append(fmt_rate(rate("graft", n + "_unchecked")))
            row += [fmt_rate(rate(k, n)) for k, _ in peers]
            row += [fmt_ratio(ratios(k, n)) for k, _ in peers]
            row += [fmt_gflops("graft", mode, h, b)] + [fmt_gflops(k, mode, h, b) for k, _ in peers]
            out.append("| " + " | ".join(row) + " |")
        return out

    for mode, mlabel in MODES:
        lines += ["", f"**{mlabel.capitalize()}, samples/s against the hidden width H** (batch {WIDTH_BATCH}):", ""]
        lines += table(mode, "width")
    for mode, mlabel in MODES:
        lines += ["", f"**{mlabel.capitalize()}, samples/s against the batch** (H = {BATCH_WIDTH}):", ""]
        lines += table(mode, "batch")

    # the H x H layer's products (graft's and the OpenBLAS program only)
    if any(rate("graft", gemm_name(p, h)) for p, _ in PRODUCTS for h in WIDTHS):
        ob = [(k, l) for k, l in peers if any(rate(k, gemm_name(p, h)) for p, _ in PRODUCTS for h in WIDTHS)]
        lines += ["", f"**The products of the H x H layer at batch {WIDTH_BATCH}**, GFLOP/s (share of the FMA peak), "
                      "with the kernels each side calls (graft: `gemm_bcast`, the weight gradient reading X^T "
                      "through strides, and `gemm_nt_packed`; OpenBLAS: `cblas_sgemm`):", ""]
        head = f"| H (batch {WIDTH_BATCH}) |"
        for _, plabel in PRODUCTS:
            head += f" {plabel} graft |" + "".join(f" {l} | graft/{l} |" for _, l in ob)
        lines += [head, "|" + "---|" * (1 + len(PRODUCTS) * (1 + 2 * len(ob)))]
        for h in WIDTHS:
            row = f"| {h} |"
            for p, _ in PRODUCTS:
                n = gemm_name(p, h)
                row += f" {fmt_gf(rate('graft', n))} |" + \
                    "".join(f" {fmt_gf(rate(k, n))} | {fmt_ratio(ratios(k, n))} |" for k, _ in ob)
            lines.append(row)

    # crossovers: where the ratio against each peer crosses 1 along each sweep
    lines += ["", "Crossovers (where graft/peer crosses 1 between two points of a sweep, interpolated "
                  "linearly in log-log; min-max of the medians along the sweep in brackets):", ""]
    for mode, mlabel in MODES:
        for k, l in peers:
            for sweep, keys, var in [("width", [(h, WIDTH_BATCH) for h in WIDTHS], "H"),
                                     ("batch", [(BATCH_WIDTH, b) for b in BATCHES], "batch")]:
                xs = [(h if var == "H" else b, ratio(k, name(mode, h, b))) for h, b in keys]
                xs = [(x, q) for x, q in xs if q]
                found = []
                for (xa, qa), (xb, qb) in zip(xs, xs[1:]):
                    if (qa - 1) * (qb - 1) < 0:
                        f = math.log(qa) / (math.log(qa) - math.log(qb))
                        xc = math.exp(math.log(xa) + f * (math.log(xb) - math.log(xa)))
                        found.append(f"{'falls below' if qa > 1 else 'rises above'} 1 at {var} ≈ {xc:.0f}")
                if xs:
                    lo, hi = min(q for _, q in xs), max(q for _, q in xs)
                    desc = "graft/peer " + ", then ".join(found) if found else \
                        ("graft faster at every point" if lo > 1 else "peer faster at every point" if hi < 1
                         else "touches 1")
                    lines.append(f"- {mlabel}, {l}, against the {'width' if var == 'H' else 'batch'}: {desc} "
                                 f"(ratios {lo:.2f}–{hi:.2f}).")
    if failures:
        lines += ["", f"{len(failures)} run(s) failed and are left out (see stderr)."]
    text = "\n".join(lines)
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")

    # ---- the chart ----
    if a.svg:
        all_rates = [v for rd in rounds for res in rd.values() for n, v in res.items()
                     if n.startswith(("sweep_train_", "sweep_infer_"))]
        all_ratios = [q for k, _ in peers for mode, _ in MODES for h, b in points()
                      for q in [ratio(k, name(mode, h, b))] if q]
        rlo = max(v for v, _ in log_ticks(1, 1e9, [1, 3], str) if v <= min(all_rates))
        rhi = min(v for v, _ in log_ticks(1, 1e9, [1, 3], str) if v >= max(all_rates))
        qlo = 2 ** math.floor(math.log2(min(all_ratios + [1.0]) * 0.95))
        qhi = 2 ** math.ceil(math.log2(max(all_ratios + [1.0]) * 1.05))
        rate_ticks = log_ticks(rlo, rhi, [1, 3], rate_label)
        ratio_ticks = [(2.0 ** e, f"{2.0 ** e:g}×") for e in range(int(math.log2(qlo)), int(math.log2(qhi)) + 1)]
        wticks = [(h, str(h)) for h in WIDTHS]
        bticks = [(b, str(b)) for b in BATCHES]
        left, top, pw, ph, gapx, gapy = 110, 70, 300, 230, 120, 100
        rows = [("samples/s", "samples/s (log)", rate_ticks, rlo, rhi, True, None),
                ("graft / peer (> 1: graft faster)", "ratio (log)", ratio_ticks, qlo, qhi, True, 1.0)]
        if peak:
            rows.append(("share of the FMA peak", "GFLOP/s / peak", [(v / 100, f"{v}%") for v in range(0, 101, 20)],
                         0.0, 1.0, False, None))
        panels = []
        for row, (ptitle, ylabel, yticks, ylo, yhi, ylog, hline) in enumerate(rows):
            for col, (var, ticks, xlabel) in enumerate([
                    ("width", wticks, f"hidden width H (batch {WIDTH_BATCH})"),
                    ("batch", bticks, f"batch (H = {BATCH_WIDTH})")]):
                keys = [(h, WIDTH_BATCH) for h in WIDTHS] if var == "width" else [(BATCH_WIDTH, b) for b in BATCHES]
                xof = (lambda hb: hb[0]) if var == "width" else (lambda hb: hb[1])
                series = []
                for mode, _ in MODES:
                    dashed = mode == "infer"
                    for k, _ in (peers if row == 1 else present):
                        if row == 0:
                            ys = [rate(k, name(mode, *hb)) for hb in keys]
                        elif row == 1:
                            ys = [ratio(k, name(mode, *hb)) for hb in keys]
                        else:
                            ys = [(gflops(k, mode, *hb) or 0) / peak or None for hb in keys]
                        series.append((COLORS[k], dashed, [(xof(hb), y) for hb, y in zip(keys, ys)]))
                panels.append({
                    "x": left + col * (pw + gapx), "y": top + row * (ph + gapy), "w": pw, "h": ph,
                    "title": ptitle + (" vs the width" if var == "width" else " vs the batch"),
                    "xlabel": xlabel, "ylabel": ylabel, "xticks": ticks, "yticks": yticks,
                    "ylo": ylo, "yhi": yhi, "ylog": ylog, "series": series, "hline": hline})
        legend = [(COLORS[k], False, l) for k, l in present] + \
                 [("#555", False, "training step"), ("#555", True, "inference"), (None, False, ""),
                  (None, False, "ratios (second row):"), (COLORS["torch"], False, "graft/LibTorch"),
                  (COLORS["openblas"], False, "graft/OpenBLAS")]
        if peak:
            legend += [(None, False, ""), (None, False, f"peak {peak:.0f} GFLOP/s")]
        title = (f"MLP 784-H-H-10, one core ({cpu['model']}, family {cpu['family']} model {cpu['model_id']}): "
                 "graft vs LibTorch vs OpenBLAS by hand")
        svg_chart(a.svg, title, panels, legend, top + len(rows) * (ph + gapy) - 20)
        log(f"wrote {a.svg}")


if __name__ == "__main__":
    main()
