/*
 * Dropout followed by max pooling over each row's real time steps (the "max" head of loopynet's recurrent
 * classifier), fused: one pass over the recurrent layer's outputs, without the (B, T, D) dropped copy, the
 * padding fill or the dense gradient of a max reduction.
 *
 * Plain C99; fast_kernel.py compiles this file twice (-DLN_REAL_F32, symbols *_f32, and -DLN_REAL_F64, *_f64)
 * into the same library as kernel.c and calls it through ctypes; types and the worker pool are kernel_common.h's.
 *
 * Symbols: T time steps, B batch rows, D features. out (T, B, D) may have any strides on time and batch (sT,
 * sB, in elements) as long as features are contiguous, so both the time-major outputs of the fused cells and
 * batch-first ones are read in place. mask (T, B, D) uint8 is dense time-major: element (t, b, f) at
 * (t B + b) D + f, 1 = kept (kernel.c's dropout_mask draws it). Each thread owns a block of batch rows.
 */
#include "kernel_common.h"

typedef struct {
    const real *out;
    const uint8_t *mask;
    const int64_t *lengths;
    real *pooled, *gain;
    int32_t *arg;
    real scale;
    int64_t sT, sB;
    int T, B, D;
} pool_job;

/* One step of a row: where x[f] * g beats best[f] (or is the first NaN), best, gain, arg <- it, g, t; g = the
 * dropout factor (m[f] ? scale : 0), or 1 without a mask. */
static void max_step(const real *restrict x, const uint8_t *restrict m, real scale, int32_t t, real *restrict best,
                     real *restrict gain, int32_t *restrict arg, int D) {
    for (int f = 0; f < D; f++) {
        const real g = m ? (m[f] ? scale : 0) : 1, v = x[f] * g;
        const int take = v > best[f] || (v != v && best[f] == best[f]);
        best[f] = take ? v : best[f];
        gain[f] = take ? g : gain[f];
        arg[f] = take ? t : arg[f];
    }
}

/* Row b: pooled[f] = max over t < lengths[b] of out[t, b, f] * (mask ? mask[t, b, f] * scale : 1), arg[f] the
 * first t reaching it, gain[f] the factor applied there (the derivative of pooled[f] by out[arg[f], b, f]).
 * A row without real steps gives pooled 0, gain 0, arg 0. NaN propagates (pooled NaN, gain 0). */
static void pool_row(const pool_job *j, int b) {
    const int D = j->D;
    real *best = j->pooled + (size_t)b * D, *gain = j->gain + (size_t)b * D;
    int32_t *arg = j->arg + (size_t)b * D;
    const int64_t n = j->lengths[b] < j->T ? j->lengths[b] : j->T;
    for (int f = 0; f < D; f++) best[f] = -INFINITY, gain[f] = 0, arg[f] = 0;
    for (int64_t t = 0; t < n; t++) {
        const real *x = j->out + t * j->sT + b * j->sB;
        if (j->mask)
            max_step(x, j->mask + ((size_t)t * j->B + b) * D, j->scale, (int32_t)t, best, gain, arg, D);
        else
            max_step(x, NULL, 1, (int32_t)t, best, gain, arg, D);
    }
    for (int f = 0; f < D; f++) {
        if (n <= 0) best[f] = 0;
        if (best[f] != best[f]) gain[f] = 0;
    }
}

static void pool_share(const void *p, int id, int n) {
    const pool_job *j = p;
    int lo, hi;
    share(j->B, 1, id, n, &lo, &hi);
    for (int b = lo; b < hi; b++) pool_row(j, b);
}

/* Forward: pooled, gain (B, D) and arg (B, D) int32 as pool_row says, for out (T, B, D) with strides sT, sB,
 * mask NULL (no dropout) or (T, B, D), lengths (B,) real steps per row (those >= T read all T steps). */
void LN(max_pool_forward)(const real *out, int64_t sT, int64_t sB, const uint8_t *mask, real scale,
                          const int64_t *lengths, real *pooled, int32_t *arg, real *gain, int T, int B, int D,
                          int threads) {
    pool_job j = {.out = out, .mask = mask, .lengths = lengths, .pooled = pooled, .gain = gain, .arg = arg,
                  .scale = scale, .sT = sT, .sB = sB, .T = T, .B = B, .D = D};
    parallel(pool_share, &j, threads);
}

/* Backward: d_out (T, B, D) with strides sT, sB, zero on entry, gets d_pooled[b, f] * gain[b, f] at
 * (arg[b, f], b, f): the gradient of max_pool_forward's pooled (the maximum's first position takes it all, as
 * torch.max(dim)'s gradient). Rows are few (B x D writes): one thread. */
void LN(max_pool_backward)(const real *d_pooled, const int32_t *arg, const real *gain, real *d_out, int64_t sT,
                           int64_t sB, int B, int D) {
    for (int b = 0; b < B; b++)
        for (int f = 0; f < D; f++) {
            const size_t i = (size_t)b * D + f;
            if (gain[i] != 0) d_out[arg[i] * sT + b * sB + f] = d_pooled[i] * gain[i];
        }
}
