/* Matrix-vector products for decode (few activation rows), AVX2 + FMA: fp32 and weight-only int8 / int4.

Does: y[T, N] = x[T, K] @ W^T with W fp32 [N, K], or in the on-disk format of assistant/engine/quant.py --
int8 [N, K] with a fp32 scale per row, or int4 [N, Kp / 2] (low nibble = even column, +8 bias)
with a fp32 scale per row and group of G columns. Each weight row is streamed once for up to
four activation rows (more are tiled, re-reading the row from L1), output rows are split over
OpenMP threads in contiguous ranges so each thread reads one sequential stream.
Doesn't: check arguments (the Python wrapper does), large-T GEMM blocking, or non-x86 targets.
The int4 fast path needs G % 32 == 0; other even G use plain scalar code.
*/
#include <immintrin.h>
#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))

int qgemv_cpu_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Weights as stored: KIND 0 is fp32, KIND 1 is int8 (widened to fp32; its scale is applied once per
   row). KIND is a compile-time constant at every call, so each use inlines to one load path. */
INLINE __m256 load8(const void *w, long k, const int KIND) {
    if (KIND) return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)w + k))));
    return _mm256_loadu_ps((const float *)w + k);
}

INLINE float load1(const void *w, long k, const int KIND) {
    return KIND ? (float)((const int8_t *)w)[k] : ((const float *)w)[k];
}

/* NT activation rows against one weight row. NV weight vectors (8 columns each) per step:
   4 for NT <= 2 so each accumulator chain gets one FMA per step (hides FMA latency at T = 1),
   2 for NT > 2 to stay within 16 ymm registers. */
INLINE void row_tile(const void *w, const float *x, long ldx, long K, float s, float *y, long ldy,
                     const int NT, const int NV, const int KIND) {
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) acc[t][j] = _mm256_setzero_ps();
    const long step = 8 * NV, kv = K / step * step, bytes = KIND ? 1 : 4;
    for (long k = 0; k < kv; k += step) {
        _mm_prefetch((const char *)w + k * bytes + 1024, _MM_HINT_T0);
        __m256 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < NV; j++) wv[j] = load8(w, k + 8 * j, KIND);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++)
                acc[t][j] = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(x + t * ldx + k + 8 * j), acc[t][j]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
#pragma GCC unroll 4
        for (int j = 1; j < NV; j++) acc[t][0] = _mm256_add_ps(acc[t][0], acc[t][j]);
        float r = hsum(acc[t][0]);
        for (long k = kv; k < K; k++) r += load1(w, k, KIND) * x[t * ldx + k];
        y[t * ldy] = r * s;
    }
}

/* Output rows split over threads in contiguous ranges; activation rows in tiles of up to four. */
INLINE void gemv_rows(const float *x, long T, long K, const void *w, const float *scales, long N,
                      float *y, int nthreads, const int KIND) {
    const long row_bytes = K * (KIND ? 1 : 4);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && N >= 64)
    for (long n = 0; n < N; n++) {
        const void *wr = (const char *)w + n * row_bytes;
        const float s = KIND ? scales[n] : 1.f;
        for (long t0 = 0; t0 < T; t0 += 4) {
            const float *xt = x + t0 * K;
            float *yt = y + t0 * N + n;
            switch (T - t0 >= 4 ? 4 : T - t0) {
                case 1: row_tile(wr, xt, K, K, s, yt, N, 1, 4, KIND); break;
                case 2: row_tile(wr, xt, K, K, s, yt, N, 2, 4, KIND); break;
                case 3: row_tile(wr, xt, K, K, s, yt, N, 3, 2, KIND); break;
                default: row_tile(wr, xt, K, K, s, yt, N, 4, 2, KIND); break;
            }
        }
    }
}

/* fp32 weights [N, K]: the BLAS gemv reaches ~80% of copy bandwidth here; one sequential stream per
   thread gets closer, and decode at batch 1 is nothing but these. */
void gemv_f32(const float *x, long T, long K, const float *w, long N, float *y, int nthreads) {
    gemv_rows(x, T, K, w, 0, N, y, nthreads, 0);
}

void qgemv_int8(const float *x, long T, long K, const int8_t *w, const float *scales, long N,
                float *y, int nthreads) {
    gemv_rows(x, T, K, w, scales, N, y, nthreads, 1);
}

/* x [T, Kp] -> xd [T, Kp] with each 16-column chunk reordered to its 8 even then 8 odd columns
   (the order the fast int4 path unpacks nibbles in), and sx [T, Kp / G] = per-group sums of x:
   the kernel multiplies x by the biased nibbles q + 8 and subtracts 8 * sum(x) per group, which
   saves a subtraction per weight. */
void qgemv_int4_prep(const float *x, long T, long Kp, long G, float *xd, float *sx) {
    for (long t = 0; t < T; t++) {
        for (long c = 0; c < Kp; c += 16)
            for (int i = 0; i < 8; i++) {
                xd[t * Kp + c + i] = x[t * Kp + c + 2 * i];
                xd[t * Kp + c + 8 + i] = x[t * Kp + c + 2 * i + 1];
            }
        for (long g = 0; g < Kp / G; g++) {
            float a = 0.f;
            for (long k = g * G; k < (g + 1) * G; k++) a += x[t * Kp + k];
            sx[t * (Kp / G) + g] = a;
        }
    }
}

/* One 32-column (16-byte) step of i4_tile. The bytes are broadcast to both 128-bit lanes and
   spread to one byte per 32-bit lane with an in-lane vpshufb (cheaper than cross-lane sign
   extension), then masked/shifted into low (even column) and high (odd column) nibbles. */
INLINE void i4_step(const uint8_t *wb, const float *xd, long ldx, __m256 s, __m256 acc[4][4], const int NT,
                    const int NA, const int SF) {
    const __m256i ca = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1,
                                        4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1);
    const __m256i cb = _mm256_setr_epi8(8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1,
                                        12, -1, -1, -1, 13, -1, -1, -1, 14, -1, -1, -1, 15, -1, -1, -1);
    const __m256i mask = _mm256_set1_epi32(15);
    _mm_prefetch((const char *)(wb + 512), _MM_HINT_T0);
    __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)wb));
    __m256i v0 = _mm256_shuffle_epi8(b, ca), v1 = _mm256_shuffle_epi8(b, cb);
    __m256 wv[4];
    wv[0] = _mm256_cvtepi32_ps(_mm256_and_si256(v0, mask));
    wv[1] = _mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4));
    wv[2] = _mm256_cvtepi32_ps(_mm256_and_si256(v1, mask));
    wv[3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4));
    if (SF) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) wv[j] = _mm256_mul_ps(wv[j], s);
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            acc[t][j % NA] = _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(xd + t * ldx + 8 * j), acc[t][j % NA]);
}

/* NT activation rows (prepared as above) against one int4 weight row. NT <= 2: per-group
   accumulators scaled once per group (no multiply per weight; alternating two accumulator sets
   at NT == 1 measured ~5% slower). NT > 2: weights scaled first (the
   multiply is shared by all NT rows) so only NT * 2 accumulators are live. */
INLINE void i4_tile(const uint8_t *w, const float *scales, const float *xd, const float *sx, long ldx,
                    long Kp, long G, float *y, long ldy, const int NT) {
    const int SF = NT > 2, NA = SF ? 2 : 4;
    const long ng = Kp / G;
    __m256 acc[4][4], row[4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        row[t] = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int j = 0; j < NA; j++) acc[t][j] = _mm256_setzero_ps();
    }
    for (long g = 0; g < ng; g++) {
        const __m256 s = _mm256_broadcast_ss(scales + g);
        for (long c = g * G; c < (g + 1) * G; c += 32) i4_step(w + c / 2, xd + c, ldx, s, acc, NT, NA, SF);
        if (!SF) {
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                __m256 a = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]));
                row[t] = _mm256_fmadd_ps(a, s, row[t]);
#pragma GCC unroll 4
                for (int j = 0; j < NA; j++) acc[t][j] = _mm256_setzero_ps();
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; t++) {
        float corr = 0.f;
        for (long g = 0; g < ng; g++) corr += scales[g] * sx[t * ng + g];
        __m256 a = SF ? _mm256_add_ps(acc[t][0], acc[t][1]) : row[t];
        y[t * ldy] = hsum(a) - 8.f * corr;
    }
}

static void i4_row_scalar(const uint8_t *w, const float *scales, const float *x, long T, long Kp, long G,
                          float *y, long ldy) {
    for (long t = 0; t < T; t++) {
        float r = 0.f;
        for (long g = 0; g < Kp / G; g++) {
            float a = 0.f;
            for (long k = g * G; k < (g + 1) * G; k += 2) {
                uint8_t b = w[k / 2];
                a += (float)((b & 15) - 8) * x[t * Kp + k] + (float)((b >> 4) - 8) * x[t * Kp + k + 1];
            }
            r += a * scales[g];
        }
        y[t * ldy] = r;
    }
}

/* T == 1: two weight rows per step, so each x load and the loop overhead are shared by both
   rows (measured ~10-15% faster than one row at a time from DRAM, ~20% in cache). Two
   accumulators per row and group (four measured no better: register pressure). Rows n and n + 1
   are adjacent, so the software prefetch runs one row pair (Kp bytes) ahead, one line per 64
   bytes; prefetching 512 bytes ahead in each row instead was ~15% slower than no 2-row tile. */
INLINE void i4_tile2r(const uint8_t *w0, const uint8_t *w1, const float *sc0, const float *sc1,
                      const float *xd, const float *sx, long Kp, long G, float *y) {
    const long ng = Kp / G;
    const __m256i ca = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1,
                                        4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1);
    const __m256i cb = _mm256_setr_epi8(8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1,
                                        12, -1, -1, -1, 13, -1, -1, -1, 14, -1, -1, -1, 15, -1, -1, -1);
    const __m256i mask = _mm256_set1_epi32(15);
    __m256 r0 = _mm256_setzero_ps(), r1 = _mm256_setzero_ps();
    for (long g = 0; g < ng; g++) {
        __m256 a0 = _mm256_setzero_ps(), a0b = a0, a1 = a0, a1b = a0;
        for (long o = g * G / 2; o < (g + 1) * G / 2; o += 64) {
            _mm_prefetch((const char *)(w0 + o + Kp), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + o + Kp), _MM_HINT_T0);
        }
        for (long c = g * G; c < (g + 1) * G; c += 32) {
            __m256i b0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w0 + c / 2)));
            __m256i b1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w1 + c / 2)));
            __m256i u0 = _mm256_shuffle_epi8(b0, ca), u1 = _mm256_shuffle_epi8(b0, cb);
            __m256i v0 = _mm256_shuffle_epi8(b1, ca), v1 = _mm256_shuffle_epi8(b1, cb);
            __m256 x0 = _mm256_loadu_ps(xd + c), x1 = _mm256_loadu_ps(xd + c + 8);
            __m256 x2 = _mm256_loadu_ps(xd + c + 16), x3 = _mm256_loadu_ps(xd + c + 24);
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(u0, mask)), x0, a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, mask)), x0, a1);
            a0b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(u0, 4)), x1, a0b);
            a1b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), x1, a1b);
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(u1, mask)), x2, a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, mask)), x2, a1);
            a0b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(u1, 4)), x3, a0b);
            a1b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), x3, a1b);
        }
        r0 = _mm256_fmadd_ps(_mm256_add_ps(a0, a0b), _mm256_broadcast_ss(sc0 + g), r0);
        r1 = _mm256_fmadd_ps(_mm256_add_ps(a1, a1b), _mm256_broadcast_ss(sc1 + g), r1);
    }
    float c0 = 0.f, c1 = 0.f;
    for (long g = 0; g < ng; g++) {
        c0 += sc0[g] * sx[g];
        c1 += sc1[g] * sx[g];
    }
    y[0] = hsum(r0) - 8.f * c0;
    y[1] = hsum(r1) - 8.f * c1;
}

/* x: [T, Kp], zero-padded; when G % 32 == 0, xd / sx from qgemv_int4_prep, else x itself. */
void qgemv_int4(const float *x, long T, long Kp, const uint8_t *w, const float *scales, long N, long G,
                const float *sx, float *y, int nthreads) {
    const long ng = Kp / G;
    if (T == 1 && G % 32 == 0) {
        const long N2 = N / 2;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && N >= 64)
        for (long p = 0; p < N2; p++) {
            const long n = 2 * p;
            const uint8_t *w0 = w + n * (Kp / 2);
            i4_tile2r(w0, w0 + Kp / 2, scales + n * ng, scales + (n + 1) * ng, x, sx, Kp, G, y + n);
        }
        if (N % 2) i4_tile(w + (N - 1) * (Kp / 2), scales + (N - 1) * ng, x, sx, Kp, Kp, G, y + N - 1, N, 1);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && N >= 64)
    for (long n = 0; n < N; n++) {
        const uint8_t *wr = w + n * (Kp / 2);
        const float *sr = scales + n * ng;
        if (G % 32) {
            i4_row_scalar(wr, sr, x, T, Kp, G, y + n, N);
            continue;
        }
        for (long t0 = 0; t0 < T; t0 += 4) {
            const float *xt = x + t0 * Kp, *st = sx + t0 * ng;
            float *yt = y + t0 * N + n;
            switch (T - t0 >= 4 ? 4 : T - t0) {
                case 1: i4_tile(wr, sr, xt, st, Kp, Kp, G, yt, N, 1); break;
                case 2: i4_tile(wr, sr, xt, st, Kp, Kp, G, yt, N, 2); break;
                case 3: i4_tile(wr, sr, xt, st, Kp, Kp, G, yt, N, 3); break;
                default: i4_tile(wr, sr, xt, st, Kp, Kp, G, yt, N, 4); break;
            }
        }
    }
}

/* Dequantise rows [N, K] to fp32 out [N, K] (ldo = K), for prefill: many activation rows make the
   product compute-bound, so the weights are expanded once per chunk and handed to the BLAS GEMM.
   torch's elementwise dequantisation cost 2-5 ms per expert matrix here; this is a streaming pass. */
void dequant_int8(const int8_t *w, const float *scales, long N, long K, float *out, int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && N >= 64)
    for (long n = 0; n < N; n++) {
        const int8_t *wr = w + n * K;
        float *o = out + n * K;
        const __m256 s = _mm256_set1_ps(scales[n]);
        long k = 0;
        for (; k + 8 <= K; k += 8) _mm256_storeu_ps(o + k, _mm256_mul_ps(load8(wr, k, 1), s));
        for (; k < K; k++) o[k] = (float)wr[k] * scales[n];
    }
}

/* int4 rows [N, Kp / 2] (+8 biased nibbles, low = even column) with scales [N, Kp / G] -> fp32 [N, K],
   K <= Kp (the padding columns are dropped). */
void dequant_int4(const uint8_t *w, const float *scales, long N, long Kp, long G, long K, float *out,
                  int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && N >= 64)
    for (long n = 0; n < N; n++) {
        const uint8_t *wr = w + n * (Kp / 2);
        const float *sr = scales + n * (Kp / G);
        float *o = out + n * K;
        for (long k0 = 0; k0 < K; k0 += G) {  /* G is even, so a group starts on a byte */
            const float s = sr[k0 / G];
            const long k1 = k0 + G < K ? k0 + G : K, pairs = (k1 - k0) / 2;
            const uint8_t *b = wr + k0 / 2;
            float *og = o + k0;
            for (long j = 0; j < pairs; j++) {
                og[2 * j] = (float)((b[j] & 15) - 8) * s;
                og[2 * j + 1] = (float)((b[j] >> 4) - 8) * s;
            }
            if ((k1 - k0) & 1) og[2 * pairs] = (float)((b[pairs] & 15) - 8) * s;
        }
    }
}
