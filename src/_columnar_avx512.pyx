# The columnar kernel again, compiled with -mavx2 -mfma -mavx512f -mavx512dq -mavx512vl -mavx512bw
# -mprefer-vector-width=512 -ffp-contract=off (setup.py): its float64 loops then run eight lanes wide.
# cnncore/columnar.py imports it only on a CPU that has those.
include "_columnar.pyx"
