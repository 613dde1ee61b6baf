/* Overflow-checked int64 arithmetic and the OpenMP probe for cnncore._core.
 * __builtin_*_overflow compile to one instruction and a branch (gcc >= 5, clang >= 3.8). */
#ifndef CNNCORE_CHECKED_H
#define CNNCORE_CHECKED_H
#include <stdint.h>
#include <string.h>

static inline int cc_mul(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int cc_add(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
/* Nonzero when either of the two int32 at p is below low (0 or 1), with one 64-bit subtract for
 * both (SWAR): low is taken from each half, and the sign bits of the halves and of their differences
 * tell. A borrow out of the low half happens only when that half is below low, flagged anyway. */
static inline uint64_t cc_pair_signs(const int32_t *p, int low) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return ((w - (uint64_t)low * 0x0000000100000001ULL) | w) & 0x8000000080000000ULL;
}
/* A hint that x is nearly always true: the compiler lays that case out as the straight path. */
#if defined(__GNUC__)
#define cc_likely(x) __builtin_expect(!!(x), 1)
#else
#define cc_likely(x) (x)
#endif
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
