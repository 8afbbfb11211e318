/* Absorbed MLA decode attention for one query token, AVX2 + FMA, fp32.

Does: out[H, kv] = softmax(scale * q[H, L] @ lat[S, L]^T) @ lat[:, :kv] in one pass over the
latent rows (flash-decoding): S is split into contiguous chunks over OpenMP threads; each thread
walks its chunk in blocks of RB rows, computing the H x RB scores with 4-head x 3-row register
tiles, then updating per head a running max, running sum and a [kv] accumulator (online softmax,
the rescale fused into the accumulator tiles); the per-thread partials are merged at the end
(rescaled by exp(m_i - m)). Each latent row is read from memory once; the next block is
prefetched into L2 a few lines per score tile (one burst per block stalled as long as no
prefetch at all, leaving the ~0.3 ms DRAM read of a 4k cache un-overlapped).
Doesn't: check arguments (the Python wrapper does), masks, more than one query token, or
non-x86 targets. exp is a vectorised Cephes-style polynomial (~2 ulp; arguments below -87.3,
whose exp is under FLT_MIN, give 0).
*/
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define INLINE static inline __attribute__((always_inline))
#ifndef RB
#define RB 48 /* latent rows per block (a multiple of 3) */
#endif
#define RP ((RB + 7) / 8 * 8) /* padded row count: the scores of one head in a block are RP / 8 ymm vectors */
#ifndef PF
#define PF 1 /* prefetch (into L2) the block this many ahead */
#endif

INLINE float mla_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

INLINE float mla_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

/* exp(x) for x <= ~88; x < -87.33 (including -inf) -> 0. */
INLINE __m256 exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f);
    __m256 zero = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(zero, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* s[h * RP + r] = scale * dot(q[h], lat[r]) for NH heads x NR rows. */
INLINE void score_tile(const float *q, long L, const float *lat, long ld, float scale, float *s,
                       const int NH, const int NR) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 3
        for (int r = 0; r < NR; r++) acc[h][r] = _mm256_setzero_ps();
    const long kv = L / 8 * 8;
    for (long k = 0; k < kv; k += 8) {
        __m256 rv[3];
#pragma GCC unroll 3
        for (int r = 0; r < NR; r++) rv[r] = _mm256_loadu_ps(lat + r * ld + k);
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++) {
            __m256 qv = _mm256_loadu_ps(q + h * L + k);
#pragma GCC unroll 3
            for (int r = 0; r < NR; r++) acc[h][r] = _mm256_fmadd_ps(qv, rv[r], acc[h][r]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 3
        for (int r = 0; r < NR; r++) {
            float t = mla_hsum(acc[h][r]);
            for (long k = kv; k < L; k++) t += q[h * L + k] * lat[r * ld + k];
            s[h * RP + r] = t * scale;
        }
}

/* o[h, 0:8*NC] = o[h, :] * alpha[h] + sum_r p[h * RP + r] * lat[r, 0:8*NC] for NH heads. */
INLINE void out_tile(float *o, long ldo, const float *p, const float *lat, long ld, long nr,
                     const float *alpha, const int NH, const int NC) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++) {
        __m256 a = _mm256_set1_ps(alpha[h]);
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) acc[h][c] = _mm256_mul_ps(_mm256_loadu_ps(o + h * ldo + 8 * c), a);
    }
    for (long r = 0; r < nr; r++) {
        __m256 lv[3];
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) lv[c] = _mm256_loadu_ps(lat + r * ld + 8 * c);
#pragma GCC unroll 4
        for (int h = 0; h < NH; h++) {
            __m256 pb = _mm256_broadcast_ss(p + h * RP + r);
#pragma GCC unroll 3
            for (int c = 0; c < NC; c++) acc[h][c] = _mm256_fmadd_ps(pb, lv[c], acc[h][c]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; h++)
#pragma GCC unroll 3
        for (int c = 0; c < NC; c++) _mm256_storeu_ps(o + h * ldo + 8 * c, acc[h][c]);
}

/* Columns [0, kv) of the accumulators of NH heads starting at o. */
INLINE void out_heads(float *o, long kv, const float *p, const float *lat, long ld, long nr,
                      const float *alpha, const int NH) {
    long c = 0;
    for (; c + 24 <= kv; c += 24) out_tile(o + c, kv, p, lat + c, ld, nr, alpha, NH, 3);
    for (; c + 8 <= kv; c += 8) out_tile(o + c, kv, p, lat + c, ld, nr, alpha, NH, 1);
    for (; c < kv; c++)
        for (int h = 0; h < NH; h++) {
            float t = o[h * kv + c] * alpha[h];
            for (long r = 0; r < nr; r++) t += p[h * RP + r] * lat[r * ld + c];
            o[h * kv + c] = t;
        }
}

/* Online softmax over rows [r0, r1): running max m[H], sum l[H], accumulators o[H, kv]. */
static void mla_chunk(const float *q, long H, long L, const float *lat, long ld, long r0, long r1,
                      long kv, float scale, float *m, float *l, float *o) {
    float s[H * RP], alpha[H];
    for (long h = 0; h < H; h++) m[h] = -INFINITY, l[h] = 0.0f;
    for (long i = 0; i < H * kv; i++) o[i] = 0.0f;
    for (long b = r0; b < r1; b += RB) {
        const long nr = r1 - b < RB ? r1 - b : RB;
        const float *blk = lat + b * ld;
        /* a later block, into L2, a few lines per score tile: a burst of prefetches would stall */
        const char *pf = (const char *)(blk + PF * RB * ld), *pf_end = (const char *)(lat + r1 * ld);
        if (pf_end > pf + RB * ld * 4) pf_end = pf + RB * ld * 4;
        const long pf_step = (RB * ld * 4 / 64) / ((H + 3) / 4 * (RB / 3)) + 1; /* lines per tile */
#define PREFETCH_SOME()                                                          \
    for (long i = 0; i < pf_step && pf < pf_end; i++, pf += 64) _mm_prefetch(pf, _MM_HINT_T1)
        long h = 0;
        for (; h + 4 <= H; h += 4) {
            long r = 0;
            for (; r + 3 <= nr; r += 3) {
                PREFETCH_SOME();
                score_tile(q + h * L, L, blk + r * ld, ld, scale, s + h * RP + r, 4, 3);
            }
            for (; r < nr; r++) score_tile(q + h * L, L, blk + r * ld, ld, scale, s + h * RP + r, 4, 1);
        }
        for (; h < H; h++) {
            long r = 0;
            for (; r + 3 <= nr; r += 3) {
                PREFETCH_SOME();
                score_tile(q + h * L, L, blk + r * ld, ld, scale, s + h * RP + r, 1, 3);
            }
            for (; r < nr; r++) score_tile(q + h * L, L, blk + r * ld, ld, scale, s + h * RP + r, 1, 1);
        }
        for (h = 0; h < H; h++) {
            float *sh = s + h * RP;
            for (long r = nr; r < RP; r++) sh[r] = -INFINITY;
            __m256 vm = _mm256_loadu_ps(sh);
            for (int j = 8; j < RP; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(sh + j));
            const float bm = mla_hmax(vm);
            const float mn = bm > m[h] ? bm : m[h];
            alpha[h] = expf(m[h] - mn);
            const __m256 mv = _mm256_set1_ps(mn);
            __m256 sum = _mm256_setzero_ps();
            for (int j = 0; j < RP; j += 8) {
                const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(sh + j), mv));
                _mm256_storeu_ps(sh + j, e);
                sum = _mm256_add_ps(sum, e);
            }
            l[h] = l[h] * alpha[h] + mla_hsum(sum);
            m[h] = mn;
        }
        for (h = 0; h + 4 <= H; h += 4) out_heads(o + h * kv, kv, s + h * RP, blk, ld, nr, alpha + h, 4);
        for (; h < H; h++) out_heads(o + h * kv, kv, s + h * RP, blk, ld, nr, alpha + h, 1);
    }
}

/* q [H, L] contiguous; lat rows of L floats, ld floats apart (ld >= L); out [H, kv] contiguous. */
void mla_decode_f32(const float *q, long H, long L, const float *lat, long ld, long S, long kv,
                    float scale, float *out, int nthreads) {
    long nt = nthreads < 1 ? 1 : nthreads;
    if (nt > S / 32) nt = S / 32 > 1 ? S / 32 : 1; /* >= 32 rows per thread */
    const long per = H * kv + 2 * H;               /* floats of one thread's partials */
    const long stride = (per + 15) / 16 * 16;      /* 64-byte aligned per thread */
    float *ws = aligned_alloc(64, (size_t)(nt * stride) * sizeof(float));
    if (!ws) { /* out of memory: NaNs rather than a crash */
        for (long i = 0; i < H * kv; i++) out[i] = NAN;
        return;
    }
    int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const long t = omp_get_thread_num(), n = omp_get_num_threads();
        if (t == 0) used = (int)n;
        float *w = ws + t * stride;
        mla_chunk(q, H, L, lat, ld, S * t / n, S * (t + 1) / n, kv, scale, w + H * kv, w + H * kv + H, w);
    }
    for (long h = 0; h < H; h++) {
        float mx = -INFINITY, den = 0.0f, f[used];
        for (int i = 0; i < used; i++) {
            const float mi = ws[i * stride + H * kv + h];
            mx = mi > mx ? mi : mx;
        }
        for (int i = 0; i < used; i++) {
            f[i] = expf(ws[i * stride + H * kv + h] - mx);
            den += f[i] * ws[i * stride + H * kv + H + h];
        }
        const float inv = 1.0f / den;
        for (int i = 0; i < used; i++) f[i] *= inv;
        for (long c = 0; c < kv; c++) {
            float t = 0.0f;
            for (int i = 0; i < used; i++) t += f[i] * ws[i * stride + h * kv + c];
            out[h * kv + c] = t;
        }
    }
    free(ws);
}
