#!/usr/bin/env bash
# One side-by-side run: the pytest-benchmark suite, then the bare-C limit, then linearity.py on both
# paths and one_model_floor.py; one table of medians, then benchmarks/targets.py's table of issue 4's targets from this run.
#   benchmarks/run_limit.sh [OUT_DIR]      (default /tmp/cnncore-bench; needs gcc, the built core)
# Environment: PYTHON (default /work/venv/bin/python), LIMIT_SRC (default /work/shared/tools/limit/bench.c),
# LIMIT_ARCHS (default 2000000), LIMIT_REPS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/cnncore-bench}
PY=${PYTHON:-/work/venv/bin/python}
SRC=${LIMIT_SRC:-/work/shared/tools/limit/bench.c}
mkdir -p "$OUT"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "nproc: $(nproc)"
  grep -m1 "model name" /proc/cpuinfo
  echo "load before: $(cat /proc/loadavg)"
  "$PY" -c "import numpy, cnncore; print('numpy', numpy.__version__, '| cnncore openmp', cnncore.openmp_enabled())"
} | tee "$OUT/machine.txt"

gcc -O3 -march=native -fopenmp "$SRC" -o "$OUT/limit-bench"

"$PY" -m pytest benchmarks -q -p no:cacheprovider --benchmark-json="$OUT/bench.json" \
  --benchmark-columns=median,min,max,iqr,rounds --benchmark-sort=name | tee "$OUT/pytest.txt"

(cd "$OUT" && ./limit-bench "${LIMIT_ARCHS:-2000000}" 1 "${LIMIT_REPS:-5}") | tee "$OUT/limit.txt"
for path in packed columnar; do
  "$PY" benchmarks/linearity.py --path "$path" | tee "$OUT/linearity-$path.txt"
done
"$PY" benchmarks/one_model_floor.py | tee "$OUT/one_model_floor.txt"
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT/machine.txt"

"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/table.md"
import json, re, sys
out = sys.argv[1]
b = {x["name"]: x for x in json.load(open(f"{out}/bench.json"))["benchmarks"]}
def rate(name):
    x = b[name]
    return x["extra_info"]["layers"] / x["stats"]["median"], x["stats"]["median"]
lim = {}
for line in open(f"{out}/limit.txt"):
    m = re.match(r"RESULT (\S+)\s+threads=(\d) med_s=(\S+) .*? layers_per_s=(\S+)", line)
    if m:
        lim[(m[1], int(m[2]))] = (float(m[4]), float(m[3]))
c1, c1t = rate("test_core[1]")
c2, c2t = rate("test_core[2]")
npy, npt = rate("test_numpy_baseline")
ref, reft = rate("test_reference")
val, valt = rate("test_validate")
l1, l1t = lim[("switch_i32", 1)]
l2, l2t = lim[("switch_i32", 2)]
rows = [
    ("cnncore core, 1 thread (`cc.count(packed, n_threads=1)`)", c1, c1t, c1),
    ("cnncore core, 2 threads (`n_threads=2`)", c2, c2t, c2),
    ("numpy baseline (`_data.numpy_count`)", npy, npt, None),
    ("pure-Python reference (1/100 slice, per layer)", ref, reft, None),
    ("validation `cc.Packed.from_arrays` (once per batch)", val, valt, None),
    ("bare C limit, switch_i32, 1 thread", l1, l1t, None),
    ("bare C limit, switch_i32, 2 threads", l2, l2t, None),
]
print("| backend | median time | layers/s |")
print("|---|---|---|")
for name, r, t, _ in rows:
    print(f"| {name} | {t * 1e3:.1f} ms | {r / 1e6:.2f} M |")
print()
print("| ratio | 1 thread | 2 threads |")
print("|---|---|---|")
print(f"| core / reference | {c1 / ref:.0f}x | {c2 / ref:.0f}x |")
print(f"| core / numpy baseline | {c1 / npy:.1f}x | {c2 / npy:.1f}x |")
print(f"| core / bare C limit (switch_i32, same thread count) | {c1 / l1:.2f} | {c2 / l2:.2f} |")
PYEOF

"$PY" benchmarks/targets.py "$OUT" | tee "$OUT/targets.md"
