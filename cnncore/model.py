"""Containers: Sequential (and the row builder that flattens any container into packed rows)."""
from __future__ import annotations

from . import _format as F
from .layers import Layer


_SRC, _NSRC, _XOFF = F.SRC, F.NSRC, F.XOFF  # local names: add() runs once per row of every model
_INDEX_NAMES = tuple(map(str, range(256)))  # a Sequential's default child names "0", "1", ..., made once


class RowBuilder:
    """Collects packed rows while a model is flattened; keeps each row's hierarchical name and type."""

    def __init__(self):
        self.rows: list[list[int]] = []
        self.extra: list[int] = []
        self.names: list[str] = []
        self.types: list[str] = []
        self.base = 0  # first row of the architecture being built: refs are relative to it

    def begin_arch(self):
        self.base = len(self.rows)

    def row(self, ref: int) -> list[int]:
        """The row of layer `ref` of the current architecture."""
        return self.rows[self.base + ref]

    def n_arch_rows(self) -> int:
        return len(self.rows) - self.base

    def add(self, layer: Layer, name: str, srcs) -> int:
        row = layer._row[:]
        row[_SRC] = srcs[0]
        if len(srcs) > 1:
            row[_NSRC] = len(srcs)
            row[_XOFF] = len(self.extra)
            self.extra.extend(srcs[1:])
        rows = self.rows
        rows.append(row)
        self.names.append(name)
        self.types.append(layer.type)
        return len(rows) - 1 - self.base


def emit(module, builder: RowBuilder, name: str, srcs) -> int:
    """Append `module` (a layer or a container) reading `srcs`; return the ref of its output."""
    if isinstance(module, Layer):
        return builder.add(module, name, srcs)
    if hasattr(module, "_emit"):
        return module._emit(builder, name, srcs)
    raise TypeError(f"{name or 'model'}: expected a cnncore layer or container, got {type(module).__name__}")


class Sequential:
    """torch.nn.Sequential(*layers) or Sequential(OrderedDict(name=layer)): layers applied in order."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], dict):  # an OrderedDict too
            self._modules = dict(zip(map(str, args[0].keys()), args[0].values()))
        else:
            names = _INDEX_NAMES if len(args) <= len(_INDEX_NAMES) else map(str, range(len(args)))
            self._modules = dict(zip(names, args))
        for k, m in self._modules.items():
            if not isinstance(m, Layer) and not hasattr(m, "_emit"):
                raise TypeError(f"Sequential: module {k!r} is not a cnncore layer or container: {m!r}")

    type = "Sequential"

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(dict(list(self._modules.items())[idx]))
        if isinstance(idx, str):
            return self._modules[idx]
        return list(self._modules.values())[idx]

    def append(self, module):
        self._modules[str(len(self._modules))] = module
        return self

    def named_children(self):
        return iter(self._modules.items())

    def _emit(self, builder, name, srcs):
        if len(srcs) != 1:
            raise TypeError(f"{name or 'Sequential'}: a Sequential takes exactly one input, got {len(srcs)}")
        ref = srcs[0]
        prefix = f"{name}." if name else ""
        add = builder.add
        for key, m in self._modules.items():
            ref = add(m, prefix + key, (ref,)) if isinstance(m, Layer) else emit(m, builder, prefix + key, (ref,))
        return ref

    def __repr__(self):
        inner = "".join(f"\n  ({k}): " + repr(m).replace("\n", "\n  ") for k, m in self._modules.items())
        return f"Sequential({inner}\n)" if inner else "Sequential()"
