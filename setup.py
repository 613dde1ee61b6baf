"""Builds the private extensions cnncore._core (src/_core.pyx), cnncore._columnar (src/_columnar.pyx),
the same columnar kernel for AVX2 CPUs (cnncore._columnar_avx2) and AVX-512 CPUs
(cnncore._columnar_avx512) where the compiler can target them, and cnncore._blocks (src/_blocks.pyx:
the compiled loops of search spaces: the block gather of sweeps, template plans and row gathers, and
NAS-Bench-201's official order).

OpenMP is probed: the extension is compiled with -fopenmp when the compiler accepts it and
serially otherwise (cnncore._core.openmp_enabled() tells which). CNNCORE_DEBUG=1 builds with
bounds checks on, -O0 -g and AddressSanitizer-friendly flags, for debugging the core.
"""
import os
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


OMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
AVX2_PROBE = "#include <immintrin.h>\nint main(void) { return _mm256_testz_si256(_mm256_set1_epi32(1), _mm256_set1_epi32(1)); }\n"
AVX2 = ["-mavx2", "-mfma", "-ffp-contract=off"]  # no fused a*b+c: the kernel's float64 must round as written
AVX512_PROBE = "#include <immintrin.h>\nint main(void) { return _mm512_reduce_add_epi64(_mm512_set1_epi64(0)); }\n"
# eight float64 lanes; gcc's default for AVX-512 is 256-bit vectors, half as wide
AVX512 = AVX2 + ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mprefer-vector-width=512"]
SIMD = {"_avx2": (AVX2, AVX2_PROBE), "_avx512": (AVX512, AVX512_PROBE)}  # module suffix: flags, probe


def _compiler_accepts(compiler, flags, probe=OMP_PROBE):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(probe)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        debug = os.environ.get("CNNCORE_DEBUG") == "1"
        omp = [] if os.environ.get("CNNCORE_NO_OPENMP") == "1" else ["-fopenmp"]
        if omp and not _compiler_accepts(self.compiler, omp):
            print("cnncore: the compiler has no OpenMP; building the core serially", file=sys.stderr)
            omp = []
        # Python's own CFLAGS carry -fwrapv; the core checks every overflow itself, so let the
        # compiler assume signed arithmetic does not wrap (better loop and address code)
        opt = ["-O0", "-g", "-fno-omit-frame-pointer"] if debug else ["-O3", "-fno-wrapv"]
        for suffix, (flags, probe) in SIMD.items():
            if self.compiler.compiler_type == "msvc" or not _compiler_accepts(self.compiler, flags, probe):
                self.extensions = [e for e in self.extensions if not e.name.endswith(suffix)]
        for ext in self.extensions:
            simd = [flags for suffix, (flags, _) in SIMD.items() if ext.name.endswith(suffix)]
            ext.extra_compile_args = opt + omp + (simd[0] if simd else [])
            ext.extra_link_args = omp
            if self.compiler.compiler_type != "msvc" and not debug:
                # inline every per-op helper into the per-architecture loop, so shapes and counts
                # stay in registers (gcc otherwise keeps _conv and _pool out of line)
                ext.define_macros.append(("CYTHON_INLINE", "inline __attribute__((always_inline))"))
        super().build_extensions()


debug = os.environ.get("CNNCORE_DEBUG") == "1"
directives = {"language_level": 3, "boundscheck": debug, "wraparound": False,
              "initializedcheck": debug, "cdivision": True}
exts = [Extension("cnncore._core", ["src/_core.pyx"], include_dirs=["src"]),
        Extension("cnncore._columnar", ["src/_columnar.pyx"], include_dirs=["src"]),
        Extension("cnncore._columnar_avx2", ["src/_columnar_avx2.pyx"], include_dirs=["src"]),
        Extension("cnncore._columnar_avx512", ["src/_columnar_avx512.pyx"], include_dirs=["src"]),
        Extension("cnncore._blocks", ["src/_blocks.pyx"], include_dirs=["src"])]
setup(ext_modules=cythonize(exts, compiler_directives=directives), cmdclass={"build_ext": BuildExt})
