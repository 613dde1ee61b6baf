"""The benchmark batch generator and numpy baseline live in the package (cnncore/_benchdata.py) so
that `cnncore bench` runs the same comparison; the benchmarks import them from here."""
from cnncore._benchdata import (DEPTH, N_ARCH_DEFAULT, N_ARCH_SMALL, N_BLOCKS, default_batch,  # noqa: F401
                                make_batch, numpy_count, slice_batch)
