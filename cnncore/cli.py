"""The `cnncore` command: `cnncore demo`, `cnncore summary <zoo name | file.py:obj>`."""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time

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
    a = p.parse_args(argv)
    try:
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
