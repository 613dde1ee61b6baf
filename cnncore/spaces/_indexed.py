"""What every space with integer indices shares: index checking and uniform sampling."""
import numpy as np


class IndexedSpace:
    """Base of spaces whose architectures are the integers 0 .. size-1 (``self.size``)."""

    size = 0

    def __len__(self):
        return self.size

    def _check(self, indices):
        idx = np.asarray(indices)
        name = type(self).__name__
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{name}: indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        bad = (idx < 0) | (idx >= self.size)
        if bad.any():
            raise IndexError(f"{name}: index {int(idx[bad].flat[0])} out of range 0..{self.size - 1}")
        return idx

    def _set_dataset(self, dataset, datasets):
        """self.dataset, .num_classes and .input_shape (3, hw, hw) from datasets[dataset] = (classes, hw)."""
        if dataset not in datasets:
            raise ValueError(f"{type(self).__name__}: unknown dataset {dataset!r}; expected one of {sorted(datasets)}")
        self.dataset = dataset
        self.num_classes, hw = datasets[dataset]
        self.input_shape = (3, hw, hw)

    def sample(self, n, seed=None):
        """n uniform indices (with replacement) from numpy's default_rng(seed)."""
        return np.random.default_rng(seed).integers(0, self.size, size=int(n), dtype=np.int64)
