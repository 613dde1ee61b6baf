"""The `cnncore` command: `cnncore demo`, `cnncore summary <zoo name | file.py:obj>`,
`cnncore sweep <space> --samples N | --all [--max-params 5M --max-macs 300M ...] --out x.parquet --plot x.png`,
`cnncore bench` (BENCHMARKS.md's comparison at a smaller size)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from decimal import Decimal, InvalidOperation

import numpy as np


def random_candidates(n, seed=0):
    """n random 5-stage conv/BN/ReLU candidates written straight into the packed format with numpy
    (the way a NAS loop writes them): per stage a kernel in {3, 5, 7}, a width in {16 .. 256} and a
    stride in {1, 2}; input resolution in {128, 160, 192, 224}; then global pooling and a classifier."""
    from . import _format as F
    from .packing import Packed
    rng = np.random.default_rng(seed)
    n_stage, per = 5, 3  # conv, bn, relu per stage
    nl = n_stage * per + 3
    L = np.zeros((n, nl, F.N_FIELDS), np.int32)
    L[:, :, F.NSRC] = 1
    L[:, :, F.SRC] = np.arange(nl, dtype=np.int32) - 1
    cin = np.full(n, 3)
    for s in range(n_stage):
        k = rng.choice([3, 5, 7], n)
        w = rng.choice([16, 24, 32, 48, 64, 96, 128, 192, 256], n)
        st = rng.choice([1, 2], n)
        c, b, r = L[:, s * per], L[:, s * per + 1], L[:, s * per + 2]
        c[:, F.OP] = F.OPS["Conv2d"]
        c[:, F.IN], c[:, F.OUT], c[:, F.GROUPS] = cin, w, 1
        c[:, F.K0] = c[:, F.K1] = k
        c[:, F.S0] = c[:, F.S1] = st
        c[:, F.P0] = c[:, F.P1] = k // 2
        c[:, F.D0] = c[:, F.D1] = 1
        b[:, F.OP], b[:, F.IN], b[:, F.FLAGS] = F.OPS["BatchNorm2d"], w, F.F_AFFINE | F.F_TRACK | F.F_BIAS
        r[:, F.OP] = F.OPS["ReLU"]
        cin = w
    g, f, lin = L[:, -3], L[:, -2], L[:, -1]
    g[:, F.OP], g[:, F.K0], g[:, F.K1] = F.OPS["AdaptiveAvgPool2d"], 1, 1
    f[:, F.OP], f[:, F.DIM0], f[:, F.DIM1] = F.OPS["Flatten"], 1, -1
    lin[:, F.OP], lin[:, F.IN], lin[:, F.OUT], lin[:, F.FLAGS] = F.OPS["Linear"], cin, 1000, F.F_BIAS
    res = rng.choice([128, 160, 192, 224], n)
    shape = np.zeros((n, 4), np.int64)
    shape[:, 0], shape[:, 1], shape[:, 2] = 3, res, res
    return Packed.from_arrays(layers=L.reshape(-1, F.N_FIELDS), extra_src=np.zeros(0, np.int32),
                              arch_offsets=np.arange(n + 1, dtype=np.int64) * nl,
                              input_offsets=np.arange(n + 1, dtype=np.int64), input_shape=shape,
                              input_ndim=np.full(n, 3, np.int32), batch_size=np.ones(n, np.int64))


def _load_model(spec):
    from . import zoo
    if ":" in spec and spec.split(":")[0].endswith(".py"):
        path, obj = spec.rsplit(":", 1)
        mod_spec = importlib.util.spec_from_file_location("_cnncore_user_model", path)
        if mod_spec is None:
            raise SystemExit(f"cnncore: cannot load {path!r}")
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        model = getattr(mod, obj, None)
        if model is None:
            raise SystemExit(f"cnncore: {path} has no object {obj!r}")
        return model() if callable(model) and not hasattr(model, "_emit") else model
    builder = getattr(zoo, spec, None)
    if builder is None or not callable(builder):
        raise SystemExit(f"cnncore: unknown model {spec!r}: expected a zoo name ({', '.join(zoo.__all__)}) "
                         f"or path/to/model.py:object")
    return builder()


def _parse_shape(text):
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"cnncore: --input expects sizes like 3x224x224, got {text!r}") from None
    return shape


_SIZE_SUFFIX = {"": 1, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12}
_SIZE_HELP = "a size like 1500, 300K, 5M, 300M or 1.2G (suffixes K, M, G, T: powers of 1000)"


def parse_size(text) -> int:
    """'5M' -> 5_000_000, '300M', '1.2G' -> 1_200_000_000, '1500', '2.5k'. Exact (decimal, not float)."""
    t = str(text).strip().replace("_", "").replace(",", "")
    suffix = t[-1:].upper() if t[-1:].isalpha() else ""
    num = t[:-1] if suffix else t
    if suffix not in _SIZE_SUFFIX or not num:
        raise ValueError(f"expected {_SIZE_HELP}, got {text!r}")
    try:
        v = Decimal(num) * _SIZE_SUFFIX[suffix]
    except InvalidOperation:
        raise ValueError(f"expected {_SIZE_HELP}, got {text!r}") from None
    if not v.is_finite() or v < 0 or v != v.to_integral_value():
        raise ValueError(f"expected {_SIZE_HELP} giving a whole non-negative number, got {text!r}")
    return int(v)


def _size_arg(text):
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _spaces():
    from .spaces import NB201, NATSSize, OFAMobileNetV3, OFAProxylessNAS
    return {"nb201": lambda dataset: NB201(dataset or "cifar10"),
            "nats": lambda dataset: NATSSize(dataset or "cifar10"),
            "ofa-mbv3": lambda dataset: OFAMobileNetV3(),
            "ofa-proxyless": lambda dataset: OFAProxylessNAS()}


def _space_key(name):
    """Space names compare without case, '-' or '_': nb-201, NB_201 and nb201 are one space."""
    return name.lower().replace("-", "").replace("_", "")


def _make_space(name, dataset):
    spaces = _spaces()
    key = {_space_key(k): k for k in spaces}.get(_space_key(name))
    if key is None:
        raise SystemExit(f"cnncore: unknown space {name!r}; available spaces: {', '.join(sorted(spaces))}")
    if dataset is not None and key.startswith("ofa"):
        raise SystemExit(f"cnncore: --dataset applies to nb201 and nats, not to {key} (ImageNet)")
    try:
        return spaces[key](dataset)
    except ValueError as e:
        raise SystemExit(f"cnncore: {e}") from None


def _check_writable(path, what):
    """Fail before the sweep, not after it: the output's directory must exist and be writable."""
    d = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SystemExit(f"cnncore: cannot write {what} {path!r}: it is a directory")
    if not os.path.isdir(d):
        raise SystemExit(f"cnncore: cannot write {what} {path!r}: directory {d!r} does not exist")
    if not os.access(d, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise SystemExit(f"cnncore: cannot write {what} {path!r}: permission denied")


def _fmt_time(s):
    return f"{s:.1f} s" if s < 90 else f"{int(s // 60)} min {int(s % 60):02d} s"


class _Progress:
    """One line on stderr, rewritten at most 5 times a second, once the run is past half a second."""

    def __init__(self, stream=None, enabled=True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, done, total):
        now = time.perf_counter()
        el = now - self.t0
        if not self.enabled or (done < total and (el < 0.5 or now - self.last < 0.2)) or (done >= total and not self.shown and el < 0.5):
            return
        self.last = now
        rate = done / el if el > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("inf")
        pct = 100.0 * done / total if total else 100.0
        self.stream.write(f"\rcnncore sweep: {done:,}/{total:,} ({pct:5.1f}%) {rate:,.0f} archs/s, "
                          f"ETA {_fmt_time(eta) if eta != float('inf') else '?'}   ")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def run_sweep(a):
    import cnncore as cc
    space = _make_space(a.space, a.dataset)
    for path, what in ((a.out, "output"), (a.plot, "plot")):
        if path:
            _check_writable(path, what)
    if a.out:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise SystemExit("cnncore: --out needs pyarrow: pip install 'cnncore[sweep]'") from None
    if a.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("cnncore: --plot needs matplotlib: pip install 'cnncore[sweep]'") from None
    cons = {k: v for k, v in (("params", a.max_params), ("macs", a.max_macs), ("flops", a.max_flops),
                              ("peak_activation_bytes", a.max_peak_bytes)) if v is not None}
    progress = _Progress(enabled=not a.quiet)
    try:
        res = cc.sweep(space, n=None if a.all else a.samples, seed=a.seed, constraints=cons,
                       chunk_size=a.chunk_size, n_threads=a.threads, progress=progress)
    finally:
        progress.close()
    try:
        if a.out:
            res.to_parquet(a.out)
        if a.plot:
            res.plot(a.plot)
    except OSError as e:
        raise SystemExit(f"cnncore: cannot write {e.filename or a.out}: {e.strerror or e}") from None
    front = res.pareto()
    rate = res.n_counted / res.seconds if res.seconds > 0 else float("inf")
    budget = ", ".join(f"{k} <= {v:,}" for k, v in cons.items()) or "none"
    print(f"{type(space).__name__}({getattr(space, 'dataset', '')}): counted {res.n_counted:,} "
          f"({res.n_valid:,} valid) in {res.seconds:.2f} s ({rate:,.0f} archs/s); budget: {budget}")
    print(f"kept {res.n_kept:,}; Pareto front over {'/'.join(res.objectives)}: {len(front)} architectures")
    if len(res):
        t = res.table
        print(f"params {int(t.params.min()):,} .. {int(t.params.max()):,}; MACs {int(t.macs.min()):,} .. {int(t.macs.max()):,}")
    for path in (a.out, a.plot):
        if path:
            print(f"wrote {path}")
    return 0


def _median_seconds(fn, repeat):
    times = []
    for _ in range(max(int(repeat), 1)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_bench(a, out=None):
    """BENCHMARKS.md's comparison on a smaller batch: the core (1 thread, all threads), the numpy
    baseline and the pure-Python reference on the same generated architectures, each checked
    against the core before it is timed; the NB201 and OFA sweeps; then one model, cnncore against
    torch's FlopCounterMode."""
    import cnncore as cc
    from ._benchdata import DEPTH, make_batch, numpy_count, slice_batch
    from .counting import run_reference
    out = out or sys.stdout
    if a.archs < 100:
        raise SystemExit("cnncore: --archs must be at least 100")
    arrays = make_batch(a.archs, seed=0)
    packed = cc.Packed.from_arrays(**arrays)
    n_layers = len(arrays["layers"])
    core = cc.count(packed)
    base = numpy_count(arrays)
    ok = core.valid
    if not (np.array_equal(base["valid"], ok) and all(np.array_equal(base[f][ok], getattr(core, f)[ok])
                                                      for f in ("params", "buffers", "macs", "flops"))):
        raise SystemExit("cnncore bench: the numpy baseline disagrees with the core")
    n_ref = max(a.archs // 100, 10)
    ref_arrays = slice_batch(arrays, n_ref)
    ref = run_reference(ref_arrays)
    if not (np.array_equal(ref["macs"], core.macs[:n_ref]) and np.array_equal(ref["error"], core.error[:n_ref])):
        raise SystemExit("cnncore bench: the reference disagrees with the core")
    rows = [("core, cc.count(packed, n_threads=1)", n_layers,
             _median_seconds(lambda: cc.count(packed, n_threads=1), a.repeat)),
            (f"core, cc.count(packed) ({'OpenMP' if cc.openmp_enabled() else 'serial'})", n_layers,
             _median_seconds(lambda: cc.count(packed), a.repeat)),
            ("numpy baseline (same checks, layer position by position)", n_layers,
             _median_seconds(lambda: numpy_count(arrays), a.repeat)),
            (f"pure-Python reference ({n_ref} archs)", n_ref * DEPTH,
             _median_seconds(lambda: run_reference(ref_arrays), max(1, a.repeat // 2)))]
    core_per_layer = rows[0][2] / rows[0][1]
    print(f"cnncore bench: {a.archs:,} generated CNNs x {DEPTH} layers = {n_layers:,} layers "
          f"(benchmarks/_data.py's mix), median of {a.repeat}; all backends checked equal to the core", file=out)
    print(f"{'backend':58} {'median':>10} {'M layers/s':>11} {'time/layer vs core(1)':>22}", file=out)
    for name, layers, sec in rows:
        print(f"{name:58} {sec * 1e3:8.2f} ms {layers / sec / 1e6:11.2f} {sec / layers / core_per_layer:21.1f}x",
              file=out)
    # BENCHMARKS.md's search-space sweeps, smaller: a new space object every run (block tables included)
    n_ofa = max(10 * a.archs, 20_000)
    t_nb = _median_seconds(lambda: cc.sweep(cc.spaces.NB201(), constraints={"params": 1_000_000}), a.repeat)
    t_ofa = _median_seconds(lambda: cc.sweep(cc.spaces.OFAMobileNetV3(), n=n_ofa, seed=0,
                                             constraints={"params": 5_000_000, "macs": 300_000_000}), a.repeat)
    print("\nsearch spaces, cc.sweep end to end (a new space object every run):", file=out)
    print(f"{'NB201, all 15,625 cells':58} {t_nb * 1e3:8.2f} ms {15_625 / t_nb:12,.0f} cells/s", file=out)
    print(f"{f'OFA-MobileNetV3, {n_ofa:,} samples':58} {t_ofa * 1e3:8.2f} ms {n_ofa / t_ofa:12,.0f} candidates/s",
          file=out)
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        print("(torch not importable: no FlopCounterMode row)", file=out)
        return 0
    model = cc.zoo.resnet18()
    net = cc.to_torch(model).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as benchmarks/test_bench_peers.py: 2 OpenMP threads on a shared machine stall
    x = torch.zeros(1, 3, 224, 224)

    def flop_counter():
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(x)
        return fc.get_total_flops()

    try:
        if flop_counter() != 2 * cc.count(model).macs:
            raise SystemExit("cnncore bench: FlopCounterMode disagrees with the core on ResNet-18")
        t_cc = _median_seconds(lambda: cc.count(model), a.repeat)
        t_fc = _median_seconds(flop_counter, a.repeat)
    finally:
        torch.set_num_threads(threads)
    print("\none model, ResNet-18 at 1x3x224x224 (MACs checked equal):", file=out)
    print(f"{'cnncore, cc.count(model)':58} {t_cc * 1e3:8.2f} ms", file=out)
    print(f"{'torch FlopCounterMode (a forward pass, 1 thread)':58} {t_fc * 1e3:8.2f} ms "
          f"{t_fc / t_cc:.0f}x cnncore's time", file=out)
    return 0


def main(argv=None):
    import cnncore as cc
    p = argparse.ArgumentParser(prog="cnncore", description="Count CNN parameters, MACs, FLOPs and shapes.")
    sub = p.add_subparsers(dest="cmd")
    d = sub.add_parser("demo", help="VGG-16's per-layer summary, then a packed batch of random candidates")
    d.add_argument("--candidates", type=int, default=200_000)
    s = sub.add_parser("summary", help="per-layer table of a zoo model or file.py:object")
    s.add_argument("model")
    s.add_argument("--input", help="input shape without batch, e.g. 3x224x224")
    s.add_argument("--batch", type=int, default=None, help="batch size (default: the model's, else 1)")
    w = sub.add_parser("sweep", help="count a search space, keep what fits a budget, write Parquet / a Pareto plot")
    w.add_argument("space", help="search space: nb201, nats, ofa-mbv3, ofa-proxyless")
    g = w.add_mutually_exclusive_group(required=True)
    g.add_argument("--samples", type=_size_arg, metavar="N", help="N uniform random architectures (e.g. 100000 or 1M)")
    g.add_argument("--all", action="store_true", help="every architecture of the space")
    w.add_argument("--dataset", default=None, help="nb201, nats: cifar10 (default), cifar100, ImageNet16-120")
    w.add_argument("--max-params", type=_size_arg, metavar="SIZE", help="e.g. 5M")
    w.add_argument("--max-macs", type=_size_arg, metavar="SIZE", help="e.g. 300M")
    w.add_argument("--max-flops", type=_size_arg, metavar="SIZE", help="e.g. 1.2G")
    w.add_argument("--max-peak-bytes", type=_size_arg, metavar="SIZE", help="peak activation memory, e.g. 2M")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--chunk-size", type=int, default=16384)
    w.add_argument("--threads", type=int, default=None)
    w.add_argument("--out", help="kept rows as Parquet (written to a temporary file, then renamed)")
    w.add_argument("--plot", help="params vs MACs scatter with the Pareto front (PNG)")
    w.add_argument("--quiet", action="store_true", help="no progress line")
    b = sub.add_parser("bench", help="BENCHMARKS.md's speed comparison at a smaller size (core, numpy, reference, torch)")
    b.add_argument("--archs", type=_size_arg, default=20_000, metavar="N", help="generated architectures (default 20000)")
    b.add_argument("--repeat", type=int, default=5, help="timed runs per backend (the median is shown)")
    a = p.parse_args(argv)
    try:
        if a.cmd == "bench":
            return run_bench(a)
        if a.cmd == "sweep":
            return run_sweep(a)
        if a.cmd == "summary":
            model = _load_model(a.model)
            shape = _parse_shape(a.input) if a.input else None
            if shape is None and getattr(model, "input_shapes", None) is None:
                raise SystemExit("cnncore: this model has no cc.Input; give its input shape with --input 3x224x224")
            print(cc.summary(model, shape, batch_size=a.batch))
            return 0
        n = a.candidates if a.cmd == "demo" else 200_000
        print(cc.summary(cc.zoo.vgg16()))
        packed = random_candidates(n)
        t0 = time.perf_counter()
        res = cc.count(packed)
        dt = time.perf_counter() - t0
        print(f"\nCounted {len(res):,} random candidates ({packed.n_layers:,} layers) in {dt * 1e3:.1f} ms "
              f"({packed.n_layers / dt / 1e6:.0f} M layers/s, {cc.openmp_enabled() and 'OpenMP' or 'serial'})")
        ok = res.valid
        print(f"valid: {int(ok.sum()):,}; params median {np.median(res.params[ok]) / 1e6:.2f} M, "
              f"MACs median {np.median(res.macs[ok]) / 1e6:.0f} M; "
              f"under 1 M params and 300 M MACs: {int((ok & (res.params < 1e6) & (res.macs < 3e8)).sum()):,}")
        return 0
    except (cc.ShapeError, ValueError, TypeError) as e:
        print(f"cnncore: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
