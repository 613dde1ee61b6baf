/* Overflow-checked int64 arithmetic and the OpenMP probe for cnncore._core.
 * __builtin_*_overflow compile to one instruction and a branch (gcc >= 5, clang >= 3.8). */
#ifndef CNNCORE_CHECKED_H
#define CNNCORE_CHECKED_H
#include <stdint.h>

static inline int cc_mul(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int cc_add(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
/* The compiler forgets what it loaded before this point and loads again what it needs after it:
 * a check that reads many fields then leaves them in memory, not in registers it would spill. */
static inline void cc_reload(void) { __asm__ __volatile__("" ::: "memory"); }
/* the number of significant bits of x (0 for 0) */
static inline int cc_bits(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

#ifdef _OPENMP
#include <omp.h>
#define CC_OPENMP 1
static inline int cc_max_threads(void) { return omp_get_max_threads(); }
#else
#define CC_OPENMP 0
static inline int cc_max_threads(void) { return 1; }
#endif
#endif
