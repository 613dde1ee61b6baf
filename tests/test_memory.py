"""Bounded memory: 50 M architectures counted as a stream of chunks stay under 1 GiB resident.

Each case runs in a fresh process (so the peak resident set, resource.getrusage's ru_maxrss, is that
of the count alone; Linux carries ru_maxrss across exec, so the count runs as a child of a small
shell, never as the exec'd image of a fork of the test session) and checks its totals against a hand calculation:
Conv2d(1, w, 3) on a 1x8x8 input gives a 6x6 output, so params = 9w + w = 10w and
macs = 36 * 9w = 324w; with w = 1 + (a mod 8) over 50 M architectures, sum(w) = 50 M / 8 * 36.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

N_ARCH = 50_000_000
CHUNK = 250_000
GIB = 1 << 30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, resource, sys
import numpy as np
import cnncore as cc

kind, n_arch, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = cc.Sequential(cc.Conv2d(1, 8, 3), cc.ReLU(), cc.AdaptiveAvgPool2d(1))
template = cc.pack([model], (1, 8, 8))

def widths(start, n):
    return 1 + (np.arange(start, start + n) % 8)

def columnar_chunks():
    for start in range(0, n_arch, chunk):
        w = widths(start, min(chunk, n_arch - start))
        out = np.zeros((len(w), 3), np.int32)
        out[:, 0] = w
        yield cc.Columnar(template, {"out": out})

def packed_chunks():
    # a fresh Packed per chunk, as a real stream makes them: only one is alive at a time
    for col in columnar_chunks():
        yield col.to_packed()

counted = params = macs = valid = 0
for res in cc.count(columnar_chunks() if kind == "columnar" else packed_chunks()):
    counted += len(res)
    valid += int(res.valid.sum())
    params += int(res.params.sum())
    macs += int(res.macs.sum())
print(json.dumps(dict(counted=counted, valid=valid, params=params, macs=macs,
                      maxrss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""


@pytest.mark.parametrize("kind", ["columnar", "packed"])
def test_50M_architectures_streamed_stay_under_1_GiB(kind):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", SCRIPT, kind, str(N_ARCH), str(CHUNK)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    sum_w = N_ARCH // 8 * 36  # w = 1..8, evenly
    assert out["counted"] == out["valid"] == N_ARCH
    assert out["params"] == 10 * sum_w
    assert out["macs"] == 324 * sum_w
    assert out["maxrss_bytes"] < GIB, f"peak RSS {out['maxrss_bytes'] / 2**20:.0f} MiB"
