"""How the counting core scales: time vs number of architectures, and throughput vs n_threads.

Data: the benchmarks/_data.py mix (21-row conv / BN / ReLU-or-MaxPool stacks, ~1.6 % invalid). One
batch of the largest size is generated, and each smaller size is its first n architectures.
Validation (`cc.Packed.from_arrays`) is done once per size and not timed; the timed call is the
public entry `cc.count(packed, n_threads=t)`. Every timing is the median of repeated calls (at
least --min-reps, and more for small sizes until --min-time seconds are spent), the two thread
counts interleaved so that a burst of load on a shared machine hits both alike.

Writes benchmarks/scaling.json and two plots, docs/img/time_vs_archs.png and
docs/img/throughput_vs_threads.png.

    python benchmarks/scaling.py                       # 10^3 .. 10^5 architectures, about a minute
    python benchmarks/scaling.py --max-archs 1000000   # up to 10^6 (21 M layers; ~2.5 GB of RAM)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402

import cnncore as cc  # noqa: E402

import _data  # noqa: E402


def sizes_between(lo: int, hi: int) -> list[int]:
    """1, 2, 5 per decade from lo to hi (both included)."""
    out, dec = [], 10 ** int(np.floor(np.log10(lo)))
    while dec <= hi:
        out += [m * dec for m in (1, 2, 5) if lo <= m * dec <= hi]
        dec *= 10
    if out[-1] != hi:
        out.append(hi)
    return out


def time_counts(packed, threads, min_reps, min_time, max_reps=2000):
    """{t: [seconds of each call]} for cc.count(packed, n_threads=t), thread counts interleaved."""
    for t in threads:  # warm-up
        cc.count(packed, n_threads=t)
    ts = {t: [] for t in threads}
    spent = 0.0
    while len(ts[threads[0]]) < min_reps or (spent < min_time and len(ts[threads[0]]) < max_reps):
        for t in threads:
            t0 = time.perf_counter()
            cc.count(packed, n_threads=t)
            dt = time.perf_counter() - t0
            ts[t].append(dt)
            spent += dt
    return ts


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-archs", type=int, default=1_000)
    ap.add_argument("--max-archs", type=int, default=100_000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="n_threads values (default 1 2)")
    ap.add_argument("--thread-archs", type=int, default=None,
                    help="batch size of the throughput-vs-threads measurement (default: --max-archs)")
    ap.add_argument("--min-reps", type=int, default=7, help="timed calls per point, at least (default 7)")
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per point, at least (default 0.3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "scaling.json"))
    ap.add_argument("--img-dir", default=os.path.join(ROOT, "docs", "img"))
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)

    sizes = sizes_between(a.min_archs, a.max_archs)
    thread_archs = a.thread_archs or a.max_archs
    n_gen = max(a.max_archs, thread_archs)
    info = dict(date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), nproc=os.cpu_count(),
                cpu=platform.processor() or platform.machine(), python=platform.python_version(),
                numpy=np.__version__, cnncore=getattr(cc, "__version__", None), openmp=cc.openmp_enabled(),
                rows_per_arch=_data.DEPTH, load_before=loadavg(), argv=sys.argv[1:])
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"generating {n_gen:,} architectures ({n_gen * _data.DEPTH:,} layers) ...", flush=True)
    t0 = time.perf_counter()
    full = _data.make_batch(n_gen, a.seed)
    print(f"  {time.perf_counter() - t0:.1f} s", flush=True)

    rows = []
    for n in sizes:
        part = full if n == n_gen else _data.slice_batch(full, n)
        packed = cc.Packed.from_arrays(**part)
        ts = time_counts(packed, a.threads, a.min_reps, a.min_time)
        row = dict(n_archs=n, n_layers=int(packed.n_layers), valid_fraction=float(cc.count(packed).valid.mean()))
        for t in a.threads:
            med = statistics.median(ts[t])
            row[f"t{t}"] = dict(median_s=med, min_s=min(ts[t]), reps=len(ts[t]),
                                archs_per_s=n / med, layers_per_s=packed.n_layers / med)
        rows.append(row)
        print(f"{n:>9,} archs  " + "  ".join(
            f"{t} thr: {row[f't{t}']['median_s'] * 1e3:9.3f} ms ({row[f't{t}']['layers_per_s'] / 1e6:6.1f} M layers/s)"
            for t in a.threads), flush=True)
        del packed, part

    # throughput vs threads: its own interleaved measurement at one size
    part = full if thread_archs == n_gen else _data.slice_batch(full, thread_archs)
    packed = cc.Packed.from_arrays(**part)
    ts = time_counts(packed, a.threads, max(a.min_reps, 15), max(a.min_time, 1.0))
    thr = []
    for t in a.threads:
        med = statistics.median(ts[t])
        thr.append(dict(n_threads=t, median_s=med, min_s=min(ts[t]), reps=len(ts[t]),
                        archs_per_s=thread_archs / med, layers_per_s=packed.n_layers / med))
    base = thr[0]["archs_per_s"] / a.threads[0]
    for r in thr:
        r["speedup_vs_first"] = r["archs_per_s"] / thr[0]["archs_per_s"]
        r["parallel_efficiency"] = r["archs_per_s"] / (base * r["n_threads"])
        print(f"throughput, {thread_archs:,} archs, n_threads={r['n_threads']}: "
              f"{r['archs_per_s'] / 1e6:.2f} M archs/s, {r['layers_per_s'] / 1e6:.1f} M layers/s, "
              f"speed-up {r['speedup_vs_first']:.2f}x", flush=True)
    info["load_after"] = loadavg()
    out = dict(machine=info, time_vs_archs=rows, throughput_vs_threads=dict(n_archs=thread_archs,
                                                                            n_layers=int(packed.n_layers),
                                                                            points=thr))
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {a.out}")
    if not a.no_plots:
        plot(out, a.threads, a.img_dir)


def plot(out, threads, img_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(img_dir, exist_ok=True)
    m = out["machine"]
    sub = (f"{m['cpu']}, {m['nproc']} CPUs (shared), load {' '.join(m['load_before'] or [])}; "
           f"{m['date']}")
    rows = out["time_vs_archs"]
    n = np.array([r["n_archs"] for r in rows], float)

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    for t, mk in zip(threads, "os^D"):
        y = np.array([r[f"t{t}"]["median_s"] for r in rows])
        ax.loglog(n, y, marker=mk, label=f"cc.count(packed, n_threads={t})")
    t1 = np.array([r[f"t{threads[0]}"]["median_s"] for r in rows])
    ref = t1[-1] * n / n[-1]
    ax.loglog(n, ref, "k--", lw=1, alpha=0.6, label="linear in n (slope 1), through the largest point")
    ax.set_xlabel(f"architectures in the batch ({m['rows_per_arch']} layers each)")
    ax.set_ylabel("median time per call (s)")
    ax.set_title("cnncore core: time vs batch size\n" + sub, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    sec = ax.secondary_xaxis("top", functions=(lambda x: x * m["rows_per_arch"], lambda x: x / m["rows_per_arch"]))
    sec.set_xlabel("layers in the batch")
    fig.tight_layout()
    p1 = os.path.join(img_dir, "time_vs_archs.png")
    fig.savefig(p1)
    plt.close(fig)

    th = out["throughput_vs_threads"]
    pts = th["points"]
    x = np.array([p["n_threads"] for p in pts])
    y = np.array([p["layers_per_s"] for p in pts]) / 1e6
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    bars = ax.bar(x, y, width=0.5, color="C0", label="measured (median)")
    ax.plot(x, y[0] * x / x[0], "k--", marker="_", lw=1, label="ideal linear scaling")
    for b, p in zip(bars, pts):
        ax.annotate(f"{p['layers_per_s'] / 1e6:.1f} M layers/s\n{p['archs_per_s'] / 1e6:.2f} M archs/s\n"
                    f"×{p['speedup_vs_first']:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xlabel("n_threads")
    ax.set_ylabel("throughput (M layers/s)")
    ax.set_ylim(0, max(y.max(), y[0] * x[-1] / x[0]) * 1.35)
    ax.set_title(f"cnncore core: throughput vs n_threads, {th['n_archs']:,} architectures "
                 f"({th['n_layers'] / 1e6:.1f} M layers)\n" + sub, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    p2 = os.path.join(img_dir, "throughput_vs_threads.png")
    fig.savefig(p2)
    plt.close(fig)
    print(f"wrote {p1}\nwrote {p2}")


if __name__ == "__main__":
    main()
