"""`cnncore bench` and `cnncore sweep` on the OFA / NATS spaces (the NB201 sweep command is in
test_sweep.py). bench checks every backend against the core before it times it, so a run that
prints its table has shown numpy baseline == reference == core (and FlopCounterMode == 2 x MACs)."""
import io

import pytest

from cnncore.cli import main as cli_main, run_bench


def test_bench_prints_the_table(capsys):
    assert cli_main(["bench", "--archs", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("core, cc.count(packed, n_threads=1)", "numpy baseline", "pure-Python reference",
                "NB201, all 15,625 cells", "OFA-MobileNetV3, 20,000 samples"):
        assert row in out
    assert "300 generated CNNs x 21 layers = 6,300 layers" in out


def test_bench_flop_counter_row(capsys):
    pytest.importorskip("torch")
    assert cli_main(["bench", "--archs", "200", "--repeat", "1"]) == 0
    assert "torch FlopCounterMode" in capsys.readouterr().out


def test_bench_rejects_tiny_and_bad_sizes(capsys):
    with pytest.raises(SystemExit, match="at least 100"):
        cli_main(["bench", "--archs", "5"])
    with pytest.raises(SystemExit):
        cli_main(["bench", "--archs", "abc"])
    assert "expected a size like" in capsys.readouterr().err


def test_sweep_ofa_command(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    out = tmp_path / "ofa.parquet"
    assert cli_main(["sweep", "ofa-mbv3", "--samples", "600", "--max-macs", "250M", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "OFAMobileNetV3" in text and "counted 600" in text
    t = pq.read_table(out)
    assert {"index", "ks", "e", "d", "r", "macs"} <= set(t.column_names)
    assert max(t.column("macs").to_pylist()) <= 250_000_000


def test_sweep_space_errors(capsys):
    assert cli_main(["sweep", "ofa-proxyless", "--all", "--quiet"]) == 2
    assert "too many to count them all" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown space 'ofa'.*ofa-mbv3"):
        cli_main(["sweep", "ofa", "--samples", "10"])
    with pytest.raises(SystemExit, match="--dataset applies to nb201 and nats"):
        cli_main(["sweep", "ofa-mbv3", "--samples", "10", "--dataset", "cifar10"])


def test_sweep_nats_all(capsys):
    assert cli_main(["sweep", "nats", "--all", "--max-params", "100K", "--quiet"]) == 0
    assert "counted 32,768" in capsys.readouterr().out


def test_run_bench_writes_to_a_stream():
    class Args:
        archs, repeat = 150, 1
    buf = io.StringIO()
    assert run_bench(Args(), out=buf) == 0 and "numpy baseline" in buf.getvalue()


def test_choice_table_to_pandas_and_parquet(tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import cnncore as cc
    import pyarrow.parquet as pq
    r = cc.sweep(cc.spaces.OFAProxylessNAS(), n=50, seed=1)
    df = r.to_pandas()
    assert list(df["ks"].iloc[3]) == r.table["ks"][3].tolist() and len(df) == 50
    r.to_parquet(tmp_path / "p.parquet")
    t = pq.read_table(tmp_path / "p.parquet")
    assert t.column("e").to_pylist()[7] == r.table["e"][7].tolist()


def test_sweep_space_names_ignore_dashes_underscores_and_case(capsys):
    """`cnncore sweep nb-201` is NAS-Bench-201: its 15,625 cells (Dong & Yang, ICLR 2020)."""
    for name in ("nb-201", "NB_201", "nb201"):
        assert cli_main(["sweep", name, "--all", "--quiet"]) == 0
        assert "counted 15,625" in capsys.readouterr().out
    assert cli_main(["sweep", "OFA_MBV3", "--samples", "20", "--quiet"]) == 0
    assert "OFAMobileNetV3" in capsys.readouterr().out
