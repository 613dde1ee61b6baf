"""Regressions found reviewing this session's search-space and sweep changes (befe240..review)."""
import numpy as np
import pytest

import cnncore as cc


def test_an_empty_sweep_writes_arch_str_as_a_string_column(tmp_path):
    """arch_str became an object column: an empty table's column has no string to infer the type
    from, and pyarrow wrote it as type null (before: string, as a non-empty sweep writes it), so
    tables of two sweeps no longer concatenate."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    space = cc.spaces.NB201()
    some = cc.sweep(space, n=20, seed=0)
    none = cc.sweep(space, n=20, seed=0, constraints={"params": 1})  # no cell has a single parameter
    assert len(some) == 20 and len(none) == 0
    a, b = some.to_parquet(tmp_path / "a.parquet"), none.to_parquet(tmp_path / "b.parquet")
    assert pq.read_schema(b).field("arch_str").type == pa.string() == pq.read_schema(a).field("arch_str").type
    both = pa.concat_tables([pq.read_table(a), pq.read_table(b)])
    assert both.num_rows == 20 and both.column("arch_str").to_pylist() == some.table.arch_str.tolist()
