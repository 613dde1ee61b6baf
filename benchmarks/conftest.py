"""Shared fixtures of the benchmarks: one generated batch of >= 1 M layers per session.

The repository root and this folder go first on sys.path, so `import cnncore` is the working tree
(with its built extension) and `import _data` is benchmarks/_data.py, however pytest is started.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (HERE, os.path.dirname(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import pytest  # noqa: E402

import _data  # noqa: E402


@pytest.fixture(scope="session")
def arrays():
    """The default batch: 100 k architectures x 21 rows = 2.1 M layers (read-only arrays)."""
    return _data.default_batch(_data.N_ARCH_DEFAULT, 0)


@pytest.fixture(scope="session")
def packed(arrays):
    import cnncore as cc
    return cc.Packed.from_arrays(**arrays)


@pytest.fixture(scope="session")
def core_result(packed):
    import cnncore as cc
    return cc.count(packed, n_threads=1)
