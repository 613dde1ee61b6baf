"""Regressions found reviewing this session's search-space and sweep changes (befe240..review)."""
import os
import subprocess
import sys
import textwrap

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


def test_a_derived_value_outside_int32_is_refused_not_wrapped():
    """The template's variants table is cast to the packed int32 rows without a range check. The
    probes compare pack() with model() on the diagonal only (every choice at its first, middle, last
    option), so with derive((a, b), fn) a combination off that diagonal is never built: here w * e of
    (65537, 65536) = 2**32 + 65536 was packed as a valid conv of 65,536 channels, where model() (torch
    too) has no such layer (ValueError: does not fit the packed format's int32 fields)."""
    from cnncore.spaces import Choice, TemplateSpace, derive

    def build(w, e):
        x = cc.Input((3, 8, 8))
        return cc.Model(x, cc.Conv2d(3, derive((w, e), lambda a, b: a * b), 1)(x))

    w, e = (65537, 65536)
    with pytest.raises(ValueError, match="int32"):
        cc.spaces.TemplateSpace(build, w=Choice([w, 16]), e=Choice([16, e])).model({"w": w, "e": e})
    try:  # the space: a clear error when made, or that candidate invalid -- never a wrapped width
        space = TemplateSpace(build, w=Choice([w, 16]), e=Choice([16, e]))
    except ValueError as err:
        assert "int32" in str(err)
        return
    r = cc.count(space.pack(space.candidates(0, 2)))
    assert r.valid[0] and r.params[0] == 3 * w * 16 + w * 16  # (65537, 16) fits: 1x1 conv with bias
    assert not r.valid[1], r.macs[1]  # (65537, 65536): was a valid conv of 65,536 output channels


def test_a_value_derived_from_several_choices_tells_its_options():
    """Choice.options of derive((a, b), fn) read self.var.values with var None: AttributeError
    ('NoneType' object has no attribute 'values'). Its options are those of each choice it is
    computed from, the axes of its .table."""
    from cnncore.spaces import Choice, derive
    w, e = Choice([16, 24]), Choice([3, 6])
    hidden = derive((w, e), lambda a, b: a * b)
    assert hidden.options == ((16, 24), (3, 6))
    assert hidden.table[1, 0] == 24 * 3  # w's option 1, e's option 0
    assert derive(w, lambda v: v // 2).options == w.options == (16, 24)  # one choice: unchanged


def test_no_thread_of_a_sweep_outlives_it():
    """The block table fills counted on a process-wide ThreadPoolExecutor kept alive for good: after
    cc.sweep returned, the process stayed multi-threaded (a non-daemon 'cnncore-blocks' thread), so
    a later fork (multiprocessing's default start method on Linux) copies a process with threads
    (Python 3.12+ warns: DeprecationWarning, an error under -W error), and exit waits on it. A sweep's
    threads end with the sweep, as its chunk threads do. (A new process: no earlier test's thread.)"""
    script = textwrap.dedent("""
        import threading
        import cnncore as cc
        r = cc.sweep(cc.spaces.NB201(), n_threads=2)  # 15,625 cells: table fills of several batches
        assert len(r) == 15625
        print(sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
