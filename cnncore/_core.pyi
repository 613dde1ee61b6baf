# Stubs of the private compiled core (src/_core.pyx). Arrays are C-contiguous numpy arrays.
from typing import Optional

import numpy as np

def openmp_enabled() -> bool: ...
def max_threads() -> int: ...
def format_constants() -> dict: ...
def count_packed(layers: np.ndarray, extra_src: np.ndarray, arch_offsets: np.ndarray,
                 input_offsets: np.ndarray, input_shape: np.ndarray, input_ndim: np.ndarray,
                 batch_size: np.ndarray, totals: np.ndarray, output_shape: np.ndarray,
                 output_ndim: np.ndarray, error: np.ndarray, error_layer: np.ndarray,
                 scratch: np.ndarray, pointers: np.ndarray, liveness: np.ndarray,
                 layer_counts: Optional[np.ndarray] = ..., layer_shape: Optional[np.ndarray] = ...,
                 layer_ndim: Optional[np.ndarray] = ..., n_threads: int = ...,
                 use_fast: bool = ...) -> None: ...
def validate_rows(layers: np.ndarray, arch_offsets: np.ndarray, input_offsets: np.ndarray,
                  n_extra: int) -> Optional[tuple]: ...
def validate_extra(layers: np.ndarray, extra_src: np.ndarray, arch_offsets: np.ndarray,
                   input_offsets: np.ndarray) -> Optional[tuple]: ...
