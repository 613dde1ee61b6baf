"""Issue 4: "Without OpenMP it still builds and runs serially."

The extensions are built again from this checkout's sources in a scratch copy with
CNNCORE_NO_OPENMP=1 (setup.py then compiles without -fopenmp, as on a compiler that has no OpenMP),
and a separate process imports that copy and counts. Its answers must be the OpenMP build's,
field by field, with n_threads=2 asked for (a serial build runs it on one thread), on the packed
path (chains, graphs, invalid architectures) and the columnar path. Builds take ~75 s here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import cnncore as cc

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("Cython")

# the batches, run in both processes (exec'd here; the child's source below starts with it)
BATCHES = r"""
from _data import make_batch, make_columnar
FIELDS = ("params", "buffers", "macs", "flops", "activation_elements", "peak_activation_bytes",
          "error", "error_layer", "output_shape", "output_ndim")


def batches():
    return {"packed": cc.Packed.from_arrays(**make_batch(3000, seed=11)),
            "graphs": cc.pack([cc.zoo.resnet18(), cc.zoo.mobilenet_v2(), cc.zoo.densenet121()] * 2),
            "columnar": make_columnar(5000)}
"""

# run in the scratch copy: counts the batches at n_threads=2 and saves every output array
CHILD = "import sys\nsys.path.insert(0, 'benchmarks')\nimport numpy as np\nimport cnncore as cc\n" + BATCHES + r"""
assert cc.__file__.startswith(sys.argv[1]), cc.__file__
out = {"openmp": np.array(cc.openmp_enabled())}
for name, batch in batches().items():
    res = cc.count(batch, n_threads=2)
    for k in FIELDS:
        out[f"{name}.{k}"] = np.asarray(getattr(res, k))
np.savez(sys.argv[2], **out)
"""


def _copy_sources(dst: Path):
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "src", dst / "src", ignore=shutil.ignore_patterns("*.c", "*.so"))
    shutil.copytree(ROOT / "cnncore", dst / "cnncore", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    shutil.copytree(ROOT / "benchmarks", dst / "benchmarks", ignore=shutil.ignore_patterns("__pycache__", "*.json"))


@pytest.mark.skipif(not sysconfig.get_config_var("CC"), reason="no C compiler configured for this Python")
def test_serial_build_counts_like_the_openmp_build(tmp_path):
    _copy_sources(tmp_path)
    env = dict(os.environ, CNNCORE_NO_OPENMP="1")
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    for so in (tmp_path / "cnncore").glob("*.so"):  # no OpenMP runtime linked into any extension
        assert b"GOMP_" not in so.read_bytes(), so.name
    saved = tmp_path / "serial.npz"
    env.pop("CNNCORE_NO_OPENMP")
    env["PYTHONPATH"] = str(tmp_path)  # the scratch copy's cnncore, not this checkout's
    run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(saved)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    serial = np.load(saved)
    assert not serial["openmp"]

    here = {"cc": cc}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        exec(BATCHES, here)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    for name, batch in here["batches"]().items():
        res = cc.count(batch, n_threads=2)
        for k in here["FIELDS"]:
            np.testing.assert_array_equal(serial[f"{name}.{k}"], np.asarray(getattr(res, k)), err_msg=f"{name}.{k}")
    assert (serial["packed.error"] != 0).any() and (serial["packed.error"] == 0).any()  # both kinds counted
