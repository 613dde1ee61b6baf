# The columnar kernel again, compiled with -mavx2 -mfma -ffp-contract=off (setup.py): its float64 loops then run four
# lanes wide instead of SSE2's two. cnncore/columnar.py imports it only on a CPU that has AVX2 and FMA.
include "_columnar.pyx"
