"""Bugs found in review, each pinned by its reproducer (both backends where it applies)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnncore as cc
from cnncore import _format as F
from cnncore.counting import run_core, run_reference


def _one(rows, inputs, extra=(), batch=1):
    layers = np.zeros((len(rows), F.N_FIELDS), np.int32)
    for i, r in enumerate(rows):
        layers[i, F.NSRC] = 1
        for col, v in r.items():
            layers[i, col] = v
    shape = np.zeros((len(inputs), 4), np.int64)
    for j, s in enumerate(inputs):
        shape[j, :len(s)] = s
    return cc.Packed.from_arrays(
        layers=layers, extra_src=np.array(extra, np.int32), arch_offsets=np.array([0, len(rows)], np.int64),
        input_offsets=np.array([0, len(inputs)], np.int64), input_shape=shape,
        input_ndim=np.array([len(s) for s in inputs], np.int32), batch_size=np.array([batch], np.int64))


def _both(packed):
    core, ref = run_core(packed.arrays(), n_threads=1), run_reference(packed.arrays())
    for k in core:
        assert np.array_equal(core[k], ref[k]), (k, core[k], ref[k])
    return core


def test_cat_checks_shapes_before_overflow():
    # (1, 2^31-1) cat (1, 3, 4) on dim 1: the ndims differ -> CAT_SHAPE, not OVERFLOW of the sum
    cat = {F.OP: F.OPS["Cat"], F.SRC: -1, F.NSRC: 3, F.XOFF: 0, F.DIM0: 1}
    out = _both(_one([cat], [(2**31 - 1,), (3, 4)], extra=[-1, -2]))
    assert out["error"][0] == F.ERROR_CODES["CAT_SHAPE"]


def test_unused_output_row_keeps_the_same_peak_in_both():
    relu = {F.OP: F.OPS["ReLU"], F.SRC: -1}
    odd = {F.OP: F.OPS["Identity"], F.SRC: 0, F.FLAGS: F.F_UNUSED | F.F_OUTPUT}
    _both(_one([relu, odd, relu], [(10,)]))


def test_huge_upsample_scale_is_overflow_not_a_crash(backend):
    # floor(3e8 * 9e299) is inf in float64: OVERFLOW (the reference used to raise OverflowError)
    with pytest.raises(cc.ShapeError, match="too large"):
        cc.count(cc.Upsample(scale_factor=9e299), (1, 300_000_000), backend=backend)


def test_norms_bias_keyword_matches_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in ((cc.BatchNorm2d(4, bias=False), torch.nn.BatchNorm2d(4, bias=False)),
                         (cc.GroupNorm(2, 4, bias=False), torch.nn.GroupNorm(2, 4, bias=False)),
                         (cc.LazyBatchNorm2d(bias=False), torch.nn.BatchNorm2d(4, bias=False))):
        r = cc.count(cc.Sequential(ours), (4, 3, 3))
        assert r.params == sum(p.numel() for p in theirs.parameters()) == 4
        assert r.buffers == sum(b.numel() for b in theirs.buffers())


def test_activation_signatures_are_torchs():
    torch = pytest.importorskip("torch")
    for name, args, kwargs in (("ReLU", (), {"inplce": True}), ("LeakyReLU", (0.1, True, 3), {}),
                               ("Sigmoid", (1,), {}), ("GELU", (), {"approx": "tanh"})):
        with pytest.raises(TypeError):
            getattr(torch.nn, name)(*args, **kwargs)
        with pytest.raises(TypeError):
            getattr(cc, name)(*args, **kwargs)
    cc.LeakyReLU(0.2, inplace=True)
    cc.GELU(approximate="tanh")
    cc.ELU(alpha=0.5)


def test_explain_rejects_a_model():
    with pytest.raises(TypeError, match="cc.Packed"):
        cc.explain(cc.Sequential(cc.ReLU()), 0)


def test_layers_width_is_checked_by_the_core():
    p = _one([{F.OP: F.OPS["ReLU"], F.SRC: -1}], [(3,)])
    a = p.arrays()
    a["layers"] = np.zeros((25, 1), np.int32)  # the right number of values, the wrong layout
    a["arch_offsets"] = np.array([0, 25], np.int64)
    with pytest.raises(ValueError, match="shape"):
        run_core(a)


def test_arrays_mutated_by_another_thread_never_crash():
    """The core releases the GIL: a thread rewriting the layer rows during the count must get
    wrong answers at worst, never a crash (run in a subprocess so a segfault fails the test)."""
    code = textwrap.dedent("""
        import threading, numpy as np, cnncore as cc
        from cnncore import _format as F
        n = 300_000
        L = np.zeros((n, F.N_FIELDS), np.int32)
        L[:, F.OP] = F.OPS["ReLU"]; L[:, F.NSRC] = 1; L[:, F.SRC] = np.arange(n) - 1
        L[1] = 0; L[1, F.OP] = F.OPS["Add"]; L[1, F.SRC] = 0; L[1, F.NSRC] = 2; L[1, F.XOFF] = 0
        p = cc.Packed.from_arrays(layers=L, extra_src=np.array([-1], np.int32),
            arch_offsets=np.array([0, n], np.int64), input_offsets=np.array([0, 1], np.int64),
            input_shape=np.array([[3, 8, 8, 0]], np.int64), input_ndim=np.array([3], np.int32),
            batch_size=np.array([1], np.int64))
        stop = False
        def flip():
            while not stop:
                L[1, F.XOFF] = 2**30; L[1, F.XOFF] = 0; L[1, F.NSRC] = 7; L[1, F.NSRC] = 2
                L[5, F.SRC] = 10**6; L[5, F.SRC] = 4
        t = threading.Thread(target=flip); t.start()
        for _ in range(40):
            cc.count(p)
        stop = True; t.join()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def test_chain_memo_never_skips_a_chain():
    """Each thread remembers the row where its last graph stopped being a chain, and sends the next
    architecture to the general path when it is no chain at that row either. Interleaved graphs and
    chains of the same length (a chain whose row 3 differs from the graph's) must all count as the
    reference and the general path count them. (Whether a chain still takes the fast path is a
    matter of speed, not of answers: the benchmarks show it.)"""
    x = cc.Input((4, 8, 8))
    a = cc.Conv2d(4, 4, 3, padding=1)(x)
    b = cc.ReLU()(a)
    c = cc.Conv2d(4, 4, 3, padding=1)(b)
    graph = cc.Model(x, cc.ReLU()(c + a))  # row 3 (the add) reads rows 2 and 0
    chain = cc.Sequential(cc.Conv2d(4, 4, 3, padding=1), cc.ReLU(), cc.Conv2d(4, 4, 3, padding=1),
                          cc.Identity(), cc.ReLU())
    models = [graph, chain, graph, graph, chain, chain, graph]
    packed = cc.pack(models, [(4, 8, 8)] * len(models))
    core = _both(packed)
    general = run_core(packed.arrays(), n_threads=1, fast_path=False)
    for k in core:
        assert np.array_equal(core[k], general[k]), k
    # by hand: peak of the graph = input 256 + a 256 + relu 256 at the second conv, then a, c, c+a
    assert list(core["peak_activation_elements"]) == [768, 512, 768, 768, 512, 512, 768]


def test_result_pickles_with_its_layer_table():
    """Found in review: the lazily built per-layer table made a one-model Result unpicklable."""
    import pickle
    r = cc.count(cc.Sequential(cc.Conv2d(3, 8, 3), cc.ReLU()), (3, 32, 32))
    again = pickle.loads(pickle.dumps(r))
    assert again.layers == r.layers and again.params == r.params == 3 * 8 * 9 + 8
    assert again.macs == 30 * 30 * 8 * 27


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is POSIX")
def test_a_forked_child_counts_after_its_parent_used_threads():
    """libgomp hangs in a child made by fork once its thread team ran in the parent (multiprocessing's
    default start method on Linux): such a child counts on one thread, with the parent's answers.
    Before, the child's first counts on 2 threads (cc.count, a sweep's block tables) never returned."""
    script = textwrap.dedent("""
        import multiprocessing as mp
        import cnncore as cc

        def child(q):
            q.put(cc.sweep(cc.spaces.NB201(), n_threads=2).table.params.sum())

        if __name__ == "__main__":
            expect = cc.sweep(cc.spaces.NB201(), n_threads=2).table.params.sum()
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            p = ctx.Process(target=child, args=(q,))
            p.start()
            got = q.get(timeout=120)
            p.join(30)
            assert got == expect, (got, expect)
            print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork is POSIX")
def test_a_child_forked_during_a_table_fill_counts():
    """A fork while another thread of the parent fills a block table (holding the chain's lock and
    the rows-buffer lock) left those locks held for ever in the child: its first sweep of that
    space never returned. The child now starts the tables afresh and gives the parent's answers."""
    script = textwrap.dedent("""
        import os, threading
        import cnncore as cc
        from cnncore.spaces import _blockwise

        expect = cc.sweep(cc.spaces.NB201(), n_threads=1).table
        space = cc.spaces.NB201()
        cc.sweep(space, n=50, n_threads=1)  # its tables hold 50 candidates' cells: the child adds more
        held, release = threading.Event(), threading.Event()

        def filler():  # what a table fill holds while it runs
            with space._chain._lock, _blockwise._LOCK:
                held.set()
                release.wait()

        t = threading.Thread(target=filler)
        t.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            got = cc.sweep(space, n_threads=1).table
            same = all((got[k] == expect[k]).all() for k in ("params", "macs", "flops", "peak_activation_bytes"))
            os._exit(0 if same else 3)
        release.set()
        t.join()
        _, status = os.waitpid(pid, 0)
        print("ok" if os.waitstatus_to_exitcode(status) == 0 else f"child exit {status}")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.stdout, out.stderr[-2000:])
