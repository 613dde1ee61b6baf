"""Markdown tables of the peer benchmarks from a pytest-benchmark JSON file.

    python -m pytest benchmarks/test_bench_peers.py -p no:cacheprovider --benchmark-json=/tmp/peers.json
    python benchmarks/peers_table.py /tmp/peers.json
"""
from __future__ import annotations

import argparse
import json

ARCHS = ("resnet18", "mobilenet_v2")
LABEL = {"resnet18": "ResNet-18", "mobilenet_v2": "MobileNetV2"}
PEERS = ("thop", "ptflops", "fvcore", "torchinfo", "FlopCounterMode")


def fmt_t(s: float) -> str:
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e9:.0f} ns"


def fmt_r(r: float) -> str:
    return f"{r:,.0f}×" if r >= 10 else f"{r:.1f}×"


ONE = "cnncore, one model"


def per_arch_times(benchmarks):
    """(arch, counter, mode) -> per-architecture median seconds, and -> the entry's extra_info, for the
    peer benchmarks' entries of a pytest-benchmark JSON's "benchmarks" list (other files' entries,
    from a run of the whole suite, are skipped)."""
    t, info = {}, {}
    for b in benchmarks:
        e = b["extra_info"]
        if "counter" in e:
            key = (e["arch"], e["counter"], e["mode"])
            t[key] = b["stats"]["median"] / e["n_arch"]
            info[key] = e
    return t, info


def _fastest(t, arch, prefix):
    """The per-architecture count time of the faster thread count of a cnncore batch entry, or None."""
    return min((v for (a, c, m), v in t.items() if a == arch and c.startswith(prefix) and m == "count"), default=None)


def smallest_ratios(t):
    """(kind, mode) -> (the smallest peer / cnncore time ratio over every peer and architecture, peer,
    arch). Kinds: "one model" (its build against the peer's build, its count against the peer's count),
    "packed" and "columnar" (the faster thread count, per architecture, against the peer's build or count)."""
    out = {}
    for x in ARCHS:
        ours = {"packed": _fastest(t, x, "cnncore, packed"), "columnar": _fastest(t, x, "cnncore, columnar")}
        for p in PEERS:
            for mode in ("build", "count"):
                for kind, v in (("one model", t.get((x, ONE, mode))), *ours.items()):
                    if v is not None:
                        r = t[(x, p, mode)] / v
                        if (kind, mode) not in out or r < out[(kind, mode)][0]:
                            out[(kind, mode)] = (r, p, x)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    a = ap.parse_args(argv)
    data = json.load(open(a.json))
    t, info = per_arch_times(data["benchmarks"])
    one = ONE
    pk = {n: next(c for (_, c, _) in t if c.startswith("cnncore, packed") and c.endswith(f"{n} thread(s)"))
          for n in (1, 2)}
    ck = {n: next((c for (_, c, _) in t if c.startswith("cnncore, columnar") and c.endswith(f"{n} thread(s)")), None)
          for n in (1, 2)}

    print(f"Machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
          f"{data['machine_info'].get('cpu', {}).get('count', '?')} logical CPUs; "
          f"run {data['datetime']}; torch threads {next(iter(info.values()))['torch_threads']}")
    print()
    print("Per-architecture median times (`build` = construct the model + count; `count` = count a "
          "model built beforehand)")
    print()
    head = "| counter | version | " + " | ".join(f"{LABEL[x]} build | {LABEL[x]} count" for x in ARCHS) + " |"
    print(head)
    print("|---|---|" + "---|---|" * len(ARCHS))
    rows = [(p, p) for p in PEERS] + [("torch.nn module", "torch module, build only")] + [
        (one, "cnncore, one model (`cc.count(cc.zoo.X())`)"),
        (pk[1], "cnncore, packed ×10 000, 1 thread, per arch"),
        (pk[2], "cnncore, packed ×10 000, 2 threads, per arch")] + [
        (ck[n], f"cnncore, columnar ×10 000, {n} thread{'s' if n > 1 else ''}, per arch") for n in (1, 2) if ck[n]]
    for c, label in rows:
        ver = next((info[k]["version"] for k in info if k[1] == c), "")
        cells = []
        for x in ARCHS:
            for mode in ("build", "count"):
                if c == "torch.nn module":
                    mode = "build only" if mode == "build" else None
                v = t.get((x, c, mode))
                cells.append(fmt_t(v) if v is not None else "–")
        print(f"| {label} | {ver} | " + " | ".join(cells) + " |")
        if c == one:
            cells = [fmt_t(t[(x, one, "build only")]) if (x, one, "build only") in t else "–" for x in ARCHS]
            print(f"| cnncore, one model, build only (`cc.zoo.X()`) | {ver} | " + " | – | ".join(cells) + " | – |")
    print()
    print("Ratios peer time / cnncore time. One model: build/build and count/count. Packed: the peer's "
          "time for one architecture (build+count, or count only) over cnncore's count time per architecture.")
    print()
    print("| peer | arch | one model, build | one model, count | packed 1 thr vs peer build | "
          "packed 1 thr vs peer count | packed 2 thr vs peer build | packed 2 thr vs peer count |")
    print("|---|---|---|---|---|---|---|---|")
    for p in PEERS:
        for x in ARCHS:
            pb, pc = t[(x, p, "build")], t[(x, p, "count")]
            rb, rc = pb / t[(x, one, "build")], pc / t[(x, one, "count")]
            k1, k2 = t[(x, pk[1], "count")], t[(x, pk[2], "count")]
            print(f"| {p} | {LABEL[x]} | " + " | ".join(fmt_r(r) for r in (rb, rc, pb / k1, pc / k1, pb / k2, pc / k2))
                  + " |")
    print()
    print("MACs each counter reports (torchvision: ResNet-18 1.814 G, MobileNetV2 0.301 G)")
    print()
    print("| counter | " + " | ".join(f"{LABEL[x]} MACs | vs cnncore" for x in ARCHS) + " |")
    print("|---|" + "---|---|" * len(ARCHS))
    for c in PEERS + (one,):
        cells = []
        for x in ARCHS:
            m, ref = info[(x, c, "count")]["macs"], info[(x, one, "count")]["macs"]
            cells += [f"{m:,}", f"{(m - ref) / ref * 100:+.2f} %"]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print()
    worst = {f"{kind.split()[0]}_{mode}": r for (kind, mode), (r, _, _) in smallest_ratios(t).items()}
    print(f"smallest ratio, one model, build+count: {fmt_r(worst['one_build'])} (target 1,000×: "
          f"{'MET' if worst['one_build'] >= 1e3 else 'MISSED'}); count only: {fmt_r(worst['one_count'])}")
    print(f"smallest ratio, packed (faster thread count) vs peer build+count: {fmt_r(worst['packed_build'])} "
          f"(target 100,000×: {'MET' if worst['packed_build'] >= 1e5 else 'MISSED'}); vs peer count only: "
          f"{fmt_r(worst['packed_count'])} ({'MET' if worst['packed_count'] >= 1e5 else 'MISSED'})")
    if "columnar_build" in worst:
        print(f"smallest ratio, the same batch as cc.Columnar (faster thread count) vs peer build+count: "
              f"{fmt_r(worst['columnar_build'])} ({'MET' if worst['columnar_build'] >= 1e5 else 'MISSED'}); "
              f"vs peer count only: {fmt_r(worst['columnar_count'])}")

if __name__ == "__main__":
    main()
