"""The named conventions of other counters against the real tools, installed from PyPI (pinned in
the `test` extra): ptflops 0.7.5 (pytorch and aten backends), calflops 0.3.2, DeepSpeed 0.19.8's
flops profiler, thop 0.1.1, fvcore 0.1.5, torchinfo 1.8, ultralytics-thop 2.2.3, and torch's own
FlopCounterMode (which installs a module named
`thop` too, so it runs in a subprocess with its own install directory first on sys.path).

Truth is the number each tool returns by default for the same torch module and input (ptflops and
its batch of 1 built from input_res; calflops' FLOPs; DeepSpeed's flops), on small models covering
every layer type the tool counts, modules and functional calls, torchvision's ResNet-18 and
MobileNetV2, random graphs (tests/test_graph_torch.py's generator) and cnncore zoo models run in
torch through cc.to_torch; cnncore's side is `cc.count(cc.from_torch(module, ...), conventions=(tool,))`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402
from torch import nn  # noqa: E402

import cnncore as cc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UTHOP = "ultralytics-thop==2.2.3"
IN_PROCESS = ("ptflops", "ptflops-aten", "calflops", "deepspeed", "thop", "fvcore", "torchinfo", "flopcounter")
N_RANDOM = 25  # random graphs per tool


class Functional(nn.Module):
    """Functional calls (rows flagged functional): tools that patch torch.nn.functional count them,
    module-hook tools (thop) do not."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)  # calflops needs a parameter to find the device

    def forward(self, x):
        x = TF.relu(self.conv(x))
        x = TF.max_pool2d(x, 2)
        x = TF.silu(TF.relu6(x))
        x = TF.elu(TF.gelu(TF.leaky_relu(x)))
        x = TF.interpolate(x, scale_factor=2)
        x = TF.softmax(TF.avg_pool2d(x, 2), dim=1)
        x = torch.add(x, x).mul(x) + x * x  # the calls count in ptflops/calflops/deepspeed, + and * do not
        return TF.adaptive_avg_pool2d(x, 1)


class Calls(nn.Module):
    """Calls the patching tools (ptflops, calflops, DeepSpeed) do not patch: torch.relu, x.relu(),
    x.softmax, x.mean over the spatial dims (ShuffleNetV2's and MNASNet's pooling)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        x = torch.relu(self.conv(x)).relu()
        x = x.softmax(1)
        return x.mean((2, 3))


def layer_cases():
    """(name, module, input shape with batch) covering the layer types the tools count."""
    return [
        ("conv2d-bn-pools", nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)), (1, 3, 18, 18)),
        ("convT-prelu-upsample", nn.Sequential(
            nn.ConvTranspose2d(4, 8, 2, stride=2, bias=False), nn.PReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(8, 4, 1), nn.Hardswish(), nn.Sigmoid()), (1, 4, 5, 5)),
        ("conv1d-norms-acts", nn.Sequential(
            nn.Conv1d(3, 8, 3), nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Softmax(dim=1), nn.Dropout(), nn.ELU(),
            nn.LeakyReLU(), nn.GELU(), nn.SiLU(), nn.Tanh()), (1, 3, 10)),
        ("linear", nn.Sequential(
            nn.Flatten(), nn.Linear(48, 16), nn.BatchNorm1d(16), nn.Linear(16, 4, bias=False)), (1, 3, 4, 4)),
        ("conv3d-groupnorm-pools", nn.Sequential(
            nn.Conv3d(2, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.MaxPool3d(2), nn.AvgPool3d(1),
            nn.AdaptiveMaxPool3d(1)), (1, 2, 6, 6, 6)),
        ("upsample-modes", nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.AdaptiveMaxPool2d(2), nn.Upsample(size=(6, 6)),
            nn.Upsample(size=8, mode="bilinear"), nn.Upsample(scale_factor=3, mode="bicubic"),
            nn.LayerNorm([24, 24], elementwise_affine=False), nn.GroupNorm(2, 4, affine=False)), (1, 2, 6, 6)),
        ("conv1d-pools", nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1), nn.MaxPool1d(2), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1),
            nn.AdaptiveMaxPool1d(1), nn.BatchNorm1d(4, affine=False)), (1, 2, 12)),
        ("upsample-linear", nn.Sequential(nn.Conv1d(2, 2, 1), nn.Upsample(scale_factor=2, mode="linear")), (1, 2, 4)),
        ("upsample-trilinear", nn.Sequential(
            nn.Conv3d(2, 2, 1), nn.Upsample(scale_factor=2, mode="trilinear")), (1, 2, 3, 3, 3)),
        ("batch-stats-avgpool-ceil", nn.Sequential(  # the last AvgPool window overhangs the input by 1
            nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.BatchNorm2d(4, affine=False, track_running_stats=False), nn.AvgPool2d(2, 1, padding=1, ceil_mode=True)),
         (1, 2, 10, 10)),
        ("conv-same-even-kernel", nn.Sequential(  # calflops/deepspeed: one output short per even d(k-1)
            nn.Conv2d(2, 3, 4, padding="same"), nn.Conv2d(3, 4, (2, 3), padding="same", dilation=(1, 2), bias=False),
            nn.Identity()), (1, 2, 8, 8)),
        ("functional", Functional(), (1, 3, 8, 8)),
        ("unpatched-calls", Calls(), (1, 3, 4, 4)),
    ]


def zoo_cases():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _torch_models
    return [("resnet18", _torch_models.resnet18(), (1, 3, 224, 224)),
            ("mobilenet_v2", _torch_models.mobilenet_v2(), (1, 3, 224, 224))]


def random_cases():
    """Random DAGs of tests/test_graph_torch.py (convs, norms, every activation, pools with
    ceil_mode, residual adds, concat, SE blocks, channel shuffle, heads) with a batch of 1."""
    import test_graph_torch as T
    out = []
    for seed in range(400):
        g, outputs = T.make_case(seed)
        if g.batch == 1 and len(outputs) == 1:
            # a copy: make_case is cached for test_graph_torch, and thop leaves buffers on the modules it profiles
            dag = copy.deepcopy(T.TorchDag(g.nodes, g.modules, outputs)).eval()
            out.append((f"random-{seed}", dag, (1, *g.in_shape)))
        if len(out) == N_RANDOM:
            return out
    return out


CC_ZOO = ("mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_0", "efficientnet_b0", "mnasnet0_5")


def cc_zoo_cases():
    """cnncore's own zoo models built with its API, run in torch through cc.to_torch (SE blocks,
    Hardswish, channel shuffle, concat). to_torch writes every row as a module, so cnncore counts
    that module traced back (the zoo's flags for torchvision's function calls are checked against
    the traced torchvision twins in tests/test_zoo_*.py)."""
    return [(f"cc.zoo.{n}", cc.to_torch(getattr(cc.zoo, n)()).eval(), (1, 3, 224, 224)) for n in CC_ZOO]


def cases(kind):
    return {"layers": layer_cases, "zoo": zoo_cases, "random": random_cases, "cc-zoo": cc_zoo_cases}[kind]()


# What a tool cannot take or what cnncore's table does not reproduce (docs/conventions.md says why)
SKIP = set()


def tool_count(tool, m, shape):
    """The number `tool` gives by default for module m on an input of `shape` (batch included)."""
    m.eval()
    x = torch.randn(*shape)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if tool in ("ptflops", "ptflops-aten"):
            from ptflops import get_model_complexity_info
            assert shape[0] == 1  # ptflops builds its own batch of 1 from input_res
            macs, _ = get_model_complexity_info(m, tuple(shape[1:]), as_strings=False, print_per_layer_stat=False,
                                                backend="aten" if tool == "ptflops-aten" else "pytorch")
            return int(macs)
        if tool == "calflops":
            from calflops import calculate_flops
            flops, _, _ = calculate_flops(m, input_shape=tuple(shape), print_results=False, output_as_string=False)
            return int(flops)
        if tool == "deepspeed":
            from deepspeed.profiling.flops_profiler import get_model_profile
            flops, _, _ = get_model_profile(m, input_shape=tuple(shape), print_profile=False, as_string=False)
            return int(flops)
        if tool in ("thop", "ultralytics-thop"):  # the same module name; which one is on sys.path decides
            from thop import profile
            return int(profile(m, inputs=(x,), verbose=False)[0])
        if tool == "flopcounter":
            from torch.utils.flop_counter import FlopCounterMode
            with FlopCounterMode(display=False) as fc:
                m(x)
            return fc.get_total_flops()
        if tool == "torchinfo":
            from torchinfo import summary
            return int(summary(m, input_size=tuple(shape), verbose=0).total_mult_adds)
        if tool == "fvcore":
            from fvcore.nn import FlopCountAnalysis
            logging.disable(logging.WARNING)  # fvcore logs every operator it skips
            try:
                fca = FlopCountAnalysis(m, x)
                fca.unsupported_ops_warnings(False)
                fca.uncalled_modules_warnings(False)
                return int(fca.total())
            finally:
                logging.disable(logging.NOTSET)
    raise AssertionError(tool)


def cnncore_count(tool, m, shape, name=""):
    with warnings.catch_warnings():
        # a random graph's dead branch may hold a module from_torch cannot give an input to: it
        # warns that its params are not counted; it never runs, so no tool counts its operations
        warnings.filterwarnings("ignore", "from_torch: module .* is never called", UserWarning)
        model = cc.from_torch(m, shape[1:], batch_size=shape[0])
    return cc.count(model, conventions=(tool,)).conventions[tool]


_IMPORT = {"ptflops": "ptflops", "ptflops-aten": "ptflops", "calflops": "calflops",
           "deepspeed": "deepspeed.profiling.flops_profiler", "thop": "thop", "fvcore": "fvcore",
           "torchinfo": "torchinfo", "flopcounter": "torch.utils.flop_counter"}


@pytest.mark.parametrize("kind", ["layers", "zoo", "random", "cc-zoo"])
@pytest.mark.parametrize("tool", IN_PROCESS)
def test_convention_equals_the_installed_tool(tool, kind):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # deepspeed and calflops warn on import (accelerator, transformers)
        pytest.importorskip(_IMPORT[tool])
    bad = []
    for name, m, shape in cases(kind):
        if (tool, name) in SKIP:
            continue
        want, got = tool_count(tool, m, shape), cnncore_count(tool, m, shape, name)
        if got != want:
            bad.append((name, got, want))
    assert not bad, f"{tool}: (case, cnncore, tool) {bad}"


# ---- ultralytics-thop: its own install directory, in a subprocess ------------------------------
@pytest.fixture(scope="session")
def uthop_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("ultralytics_thop")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                           str(target), UTHOP], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"pip could not install {UTHOP} into {target}: {proc.stderr.strip()[-300:]}")
    return target


_UTHOP_SCRIPT = """
import json, sys
import test_conventions_tools as T
import thop
assert thop.__file__.startswith(sys.argv[1]), thop.__file__  # ultralytics', not thop 0.1.1
out = {}
for name, m, shape in T.cases(sys.argv[2]):
    if ("ultralytics-thop", name) not in T.SKIP:
        out[name] = T.tool_count("ultralytics-thop", m, shape)
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["layers", "zoo", "random", "cc-zoo"])
def test_ultralytics_thop_convention_equals_the_tool(uthop_dir, kind):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(uthop_dir), str(ROOT / "tests"), str(ROOT / "benchmarks")]))
    proc = subprocess.run([sys.executable, "-c", _UTHOP_SCRIPT, str(uthop_dir), kind], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    want = json.loads(proc.stdout.strip().splitlines()[-1])
    assert want
    got = {name: cnncore_count("ultralytics-thop", m, shape, name) for name, m, shape in cases(kind) if name in want}
    assert got == want
