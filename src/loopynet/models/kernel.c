/*
 * loopynet's compiled kernels, for contiguous row-major arrays: the sequential SimpleRNN recurrence
 * (forward and BPTT), the input projection with rows gathered by token id, the "sum of outer products"
 * behind dW_xh and dW_hh, the book's dropout + Flatten + Dense(1) head, dropout masks and distinct ids.
 *
 * Plain C99 with GCC/Clang vector extensions; no Python or torch headers. fast_kernel.py compiles
 * this file twice into one shared library, with -DLN_REAL_F32 (symbols *_f32, float) and with
 * -DLN_REAL_F64 (symbols *_f64, double), and calls it through ctypes. What it shares with
 * cells_kernel.c (types, vectors, the row matmul, tanh, the worker pool) is in kernel_common.h.
 *
 * Symbols: T time steps, B batch rows, H units. Layouts (all time-major):
 *   a, h, dh, da : (T, B, H)      W : (H, H), Keras layout, h_new = h_prev @ W
 *   h0, dh0      : (B, H)         mask : (T, B, H) uint8, 1 = kept    w_dense : (T, H)
 *
 * Batch rows are independent in both directions, so each thread (kernel_common.h's pool) runs all T steps
 * for its own contiguous block of rows: no synchronisation inside the time loop.
 */
#if defined(LN_REAL_F32)
#define LN_DEFINE_POOL /* the worker pool is defined here, once for the library (kernel_common.h) */
#endif
#include "kernel_common.h"

#define KB 4 /* rows of `out` updated together in rows_outer (by 2 vectors of columns) */

/* outp rows [k0, k1), columns [c, c + NC*VL) += sum_{r<R} xr[r][k] * dp[r]: R rank-1 updates, NC <= 2. */
static inline __attribute__((always_inline)) void tile_outer(
    const real *const *xr, const real *dp, int k0, int k1, int Hp, int c, real *outp, const int R, const int NC) {
    vreal d[ROWS][2];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < NC; q++) d[r][q] = vload(dp + r * Hp + c + q * VL);
    int k = k0;
    for (; k + KB <= k1; k += KB) {
        vreal acc[KB][2];
        for (int i = 0; i < KB; i++)
            for (int q = 0; q < NC; q++) acc[i][q] = vload(outp + (size_t)(k + i) * Hp + c + q * VL);
        for (int r = 0; r < R; r++)
            for (int i = 0; i < KB; i++) {
                vreal x = splat(xr[r][k + i]);
                if (NC > 1) PIN(x);
                for (int q = 0; q < NC; q++) acc[i][q] += x * d[r][q];
            }
        for (int i = 0; i < KB; i++)
            for (int q = 0; q < NC; q++) vstore(outp + (size_t)(k + i) * Hp + c + q * VL, acc[i][q]);
    }
    for (; k < k1; k++)
        for (int q = 0; q < NC; q++) {
            vreal acc = vload(outp + (size_t)k * Hp + c + q * VL);
            for (int r = 0; r < R; r++) acc += xr[r][k] * d[r][q];
            vstore(outp + (size_t)k * Hp + c + q * VL, acc);
        }
}

/* outp[k] (Hp) += sum_{r<R} xr[r][k] * dp[r] (Hp) for k in [k0, k1): R rank-1 updates of (n_in, Hp) outp. */
static inline __attribute__((always_inline)) void rows_outer(
    const real *const *xr, const real *dp, int k0, int k1, int Hp, real *outp, const int R) {
    int c = 0;
    for (; c + 2 * VL <= Hp; c += 2 * VL) tile_outer(xr, dp, k0, k1, Hp, c, outp, R, 2);
    if (c < Hp) tile_outer(xr, dp, k0, k1, Hp, c, outp, R, 1);
}

/* Forward for rows [b, b+R) at step t: h[t] = tanh(a[t] + h_prev @ W); row i = t*B + b + r of a is
 * a + (where ? where[i] : i) * H. With zacc (B, H), the book head's per-(b, j) sums: zacc[b] += mask * h[t] * w[t]
 * (mask NULL: all kept), as head_forward adds them. */
static inline __attribute__((always_inline)) void forward_rows(
    const real *a, const int64_t *where, const real *Wp, const real *h_prev, real *h, int B, int H, int Hp, int t,
    int b, real *y, const uint8_t *mask, const real *w, real *zacc, const int R) {
    const size_t row = ((size_t)t * B + b) * H;
    const real *xr[ROWS];
    for (int r = 0; r < R; r++) {
        const size_t i = (size_t)t * B + b + r;
        xr[r] = h_prev + (size_t)(b + r) * H;
        memcpy(y + r * Hp, a + (where ? (size_t)where[i] : i) * H, H * sizeof(real));
        memset(y + r * Hp + H, 0, (Hp - H) * sizeof(real));
    }
    rows_matmul(xr, Wp, H, Hp, y, R);
    for (int r = 0; r < R; r++) {
        const size_t o = row + (size_t)r * H;
        for (int j = 0; j < H; j++) h[o + j] = tanh_real(y[r * Hp + j]);
        if (!zacc) continue;
        const real *ht = h + o, *wt = w + (size_t)t * H;
        real *ab = zacc + (size_t)(b + r) * H;
        if (mask)
            for (int j = 0; j < H; j++) ab[j] += (real)mask[o + j] * ht[j] * wt[j];
        else
            for (int j = 0; j < H; j++) ab[j] += ht[j] * wt[j];
    }
}

/* The arrays of the recurrence; Wp is W (forward) or W^T (backward), zero-padded to (H, Hp); y has 2 x ROWS x Hp
 * scratch values per thread. where: the rows of a (forward, may be NULL). dh NULL (backward): dh is the book
 * head's gradient, computed as head_backward would write it from dz (B,), mask (T, B, H) or NULL, w (T, H),
 * scale. Backward partial sums, one set per block of ROWS batch rows (a block is never split between threads,
 * so the sums are the same for any thread count): dWp (blocks, H, Hp) of dW_hh when not NULL, dwp (blocks, T, H)
 * of the head's dw when not NULL. */
typedef struct {
    const real *a, *dh, *h0, *Wp, *dz, *w;
    const int64_t *where;
    const uint8_t *mask;
    real *h, *da, *dh0, *y, *dWp, *dwp, *zacc, *z, scale, bias;
    size_t dWs, dws; /* strides of the blocks' partial sums (whole cache lines) */
    int T, B, H, Hp;
} rnn_job;

/* Backward for rows [b, b+R) at step t: da[t] = (dh[t] + dh_next) * (1 - h[t]^2); dh_next = da[t] @ W^T; with
 * dWp, block b / ROWS's dW_hh partial += h[t-1]^T da[t] (h[-1] = h0; none when h0 is NULL); with dwp, its partial
 * of the head's dw[t] += the rows' g * mask * h[t]. dh_next (rows of the (B, H) running state) is read, then
 * overwritten. dp: ROWS x Hp scratch whose padding columns are zero. */
static inline __attribute__((always_inline)) void backward_rows(
    const rnn_job *j, const real *WTp, real *dh_next, int t, int b, real *y, real *dp, const int R) {
    const int B = j->B, H = j->H, Hp = j->Hp;
    const real *h = j->h, *wt = j->w + (size_t)t * H;
    real *da = j->da;
    const size_t row = ((size_t)t * B + b) * H;
    real *dwt = j->dwp ? j->dwp + (b / ROWS) * j->dws + (size_t)t * H : NULL;
    const real *xr[ROWS];
    for (int r = 0; r < R; r++) {
        const size_t o = row + (size_t)r * H;
        real *dn = dh_next + (size_t)(b + r) * H;
        const real *dh = j->dh ? j->dh + o : da + o;
        if (!j->dh) { /* the head's dh into da's row first (a separate loop: the same rounding as a stored dh) */
            const real g = j->dz[b + r] * j->scale;
            if (j->mask)
                for (int c = 0; c < H; c++) {
                    const real m = (real)j->mask[o + c] * g;
                    da[o + c] = m * wt[c];
                    if (dwt) dwt[c] += m * h[o + c];
                }
            else
                for (int c = 0; c < H; c++) {
                    da[o + c] = g * wt[c];
                    if (dwt) dwt[c] += g * h[o + c];
                }
        }
        for (int c = 0; c < H; c++) dp[r * Hp + c] = da[o + c] = (dh[c] + dn[c]) * (1 - h[o + c] * h[o + c]);
        memset(y + r * Hp, 0, Hp * sizeof(real));
        xr[r] = da + o;
    }
    rows_matmul(xr, WTp, H, Hp, y, R);
    for (int r = 0; r < R; r++) memcpy(dh_next + (size_t)(b + r) * H, y + r * Hp, H * sizeof(real));
    const real *prev = t ? h + (size_t)(t - 1) * B * H : j->h0;
    if (j->dWp && prev) {
        for (int r = 0; r < R; r++) xr[r] = prev + (size_t)(b + r) * H;
        rows_outer(xr, dp, 0, H, Hp, j->dWp + (b / ROWS) * j->dWs, R);
    }
}

static void forward_share(const void *p, int id, int n) {
    const rnn_job *j = p;
    int lo, hi;
    share(j->B, ROWS, id, n, &lo, &hi);
    real *y = j->y + (size_t)id * 2 * ROWS * j->Hp;
    for (int t = 0; t < j->T; t++) {
        const real *prev = t ? j->h + (size_t)(t - 1) * j->B * j->H : j->h0;
        int b = lo;
        for (; b + ROWS <= hi; b += ROWS)
            forward_rows(j->a, j->where, j->Wp, prev, j->h, j->B, j->H, j->Hp, t, b, y, j->mask, j->w, j->zacc, ROWS);
        for (; b < hi; b++)
            forward_rows(j->a, j->where, j->Wp, prev, j->h, j->B, j->H, j->Hp, t, b, y, j->mask, j->w, j->zacc, 1);
    }
    for (int b = lo; j->zacc && b < hi; b++) { /* the head's logits, summed over j as head_forward does */
        real s = 0;
        for (int c = 0; c < j->H; c++) s += j->zacc[(size_t)b * j->H + c];
        j->z[b] = j->bias + j->scale * s;
    }
}

static void backward_share(const void *p, int id, int n) {
    const rnn_job *j = p;
    int lo, hi;
    share(j->B, ROWS, id, n, &lo, &hi);
    real *y = j->y + (size_t)id * 2 * ROWS * j->Hp, *dp = y + ROWS * j->Hp;
    memset(dp, 0, ROWS * j->Hp * sizeof(real));
    for (int t = j->T - 1; t >= 0; t--) {
        int b = lo;
        for (; b + ROWS <= hi; b += ROWS) backward_rows(j, j->Wp, j->dh0, t, b, y, dp, ROWS);
        for (; b < hi; b++) backward_rows(j, j->Wp, j->dh0, t, b, y, dp, 1);
    }
}

/* Run the forward (transpose 0) or backward (1) recurrence on `threads` threads, each owning whole batch rows
 * for all T steps. Returns 0, or -1 when out of memory. */
static int recurrence(rnn_job *j, const real *W, int transpose, int threads) {
    j->Hp = round_up(j->H);
    real *Wp = padded(W, j->H, j->H, transpose);
    real *y = alloc_lines((size_t)threads * 2 * ROWS * j->Hp * sizeof(real), 0);
    if (Wp && y) {
        j->Wp = Wp;
        j->y = y;
        parallel(transpose ? backward_share : forward_share, j, threads);
    }
    free(Wp);
    free(y);
    return Wp && y ? 0 : -1;
}

/* out (rows, cols) = the sum over `blocks` partial sums, block q at parts + q * stride with rows of ld values,
 * added in block order (zeros when there are none, B = 0). */
static void sum_blocks(const real *parts, size_t stride, int blocks, int rows, int cols, int ld, real *out) {
    for (int k = 0; k < rows; k++)
        for (int c = 0; c < cols; c++) {
            real s = blocks ? parts[(size_t)k * ld + c] : 0;
            for (int q = 1; q < blocks; q++) s += parts[q * stride + (size_t)k * ld + c];
            out[(size_t)k * cols + c] = s;
        }
}

/* h (T, B, H) = the recurrence over a from h0 (B, H), on up to `threads` threads: a is (T, B, H), or with
 * where (T*B,) (the token projection's rows) row i of a is a[where[i]] (a (U, H)). z (B,), unless NULL: the book
 * head's logits from h as head_forward computes them from mask (T, B, H) or NULL, w (T, H), scale and bias, summed
 * while each step's states are in cache. Returns 0, or -1 when out of memory. */
int LN(rnn_forward)(const real *a, const int64_t *where, const real *W, const real *h0, real *h, const uint8_t *mask,
                    const real *w, real scale, real bias, real *z, int T, int B, int H, int threads) {
    rnn_job j = {.a = a, .where = where, .h0 = h0, .h = h, .mask = mask, .w = w, .scale = scale, .bias = bias, .z = z,
                 .T = T, .B = B, .H = H};
    j.zacc = z ? alloc_lines((size_t)B * H * sizeof(real), 1) : NULL;
    const int status = z && !j.zacc ? -1 : recurrence(&j, W, 0, threads);
    free(j.zacc);
    return status;
}

/* BPTT: da (T, B, H) and dh0 (B, H) from dh (T, B, H) = dloss/dh[t] arriving from outside the recurrence
 * and h (T, B, H) from the forward. dh NULL: dh is the book head's gradient, from dz (B,), mask (T, B, H)
 * or NULL, w (T, H) and scale, the values head_backward would write (so no (T, B, H) dh is stored); then dw
 * (T, H), unless NULL, is written with the head's dw (head_backward's). dW (H, H), unless NULL, is written with
 * dW_hh = sum_t h[t-1]^T da[t], h[-1] = h0 (NULL: zeros), accumulated in the time loop while da[t] is in cache.
 * The sums over batch rows (dW, dw) are taken per block of ROWS rows, then over the blocks in order: the same for
 * any thread count. Returns 0, or -1 when out of memory. */
int LN(rnn_backward)(const real *dh, const real *dz, const uint8_t *mask, const real *w, real scale, const real *h,
                     const real *h0, const real *W, real *da, real *dh0, real *dW, real *dw, int T, int B, int H,
                     int threads) {
    const int blocks = (B + ROWS - 1) / ROWS, Hp = round_up(H);
    dw = dh ? NULL : dw;
    rnn_job j = {.dh = dh, .dz = dz, .mask = mask, .w = w, .scale = scale, .h = (real *)h, .h0 = h0, .da = da,
                 .dh0 = dh0, .T = T, .B = B, .H = H};
    j.dWs = line_reals((size_t)H * Hp), j.dws = line_reals((size_t)T * H);
    j.dWp = dW ? alloc_lines(blocks * j.dWs * sizeof(real), 1) : NULL;
    j.dwp = dw ? alloc_lines(blocks * j.dws * sizeof(real), 1) : NULL;
    memset(dh0, 0, (size_t)B * H * sizeof(real));
    const int status = (dW && !j.dWp) || (dw && !j.dwp) ? -1 : recurrence(&j, W, 1, threads);
    if (status == 0 && dW) sum_blocks(j.dWp, j.dWs, blocks, H, H, Hp, dW);
    if (status == 0 && dw) sum_blocks(j.dwp, j.dws, blocks, T, H, H, dw);
    free(j.dWp);
    free(j.dwp);
    return status;
}

/* Row i of X: x + (idx ? idx[i] : i) * ldx. */
static inline const real *x_row(const real *x, const int64_t *idx, int64_t ldx, int64_t i) {
    return x + (idx ? idx[i] : i) * ldx;
}

/* The arrays of project_rows and accumulate_xt_d; Wp is W or out zero-padded to (n_in, Hp); y has ROWS x Hp
 * scratch values per thread. */
typedef struct {
    const real *x, *d, *bias;
    const int64_t *idx;
    int64_t ldx;
    real *Wp, *out, *y;
    int n, n_in, H, Hp;
} rows_job;

/* One block of project_rows: out rows [i, i+R) = bias + X rows @ W. */
static inline __attribute__((always_inline)) void project_block(const rows_job *j, int i, real *y, const int R) {
    const real *xr[ROWS];
    for (int r = 0; r < R; r++) {
        xr[r] = x_row(j->x, j->idx, j->ldx, i + r);
        memcpy(y + r * j->Hp, j->bias, j->H * sizeof(real));
        memset(y + r * j->Hp + j->H, 0, (j->Hp - j->H) * sizeof(real));
    }
    rows_matmul(xr, j->Wp, j->n_in, j->Hp, y, R);
    for (int r = 0; r < R; r++) memcpy(j->out + (size_t)(i + r) * j->H, y + r * j->Hp, j->H * sizeof(real));
}

static void project_share(const void *p, int id, int n) {
    const rows_job *j = p;
    int lo, hi;
    share(j->n, ROWS, id, n, &lo, &hi);
    real *y = j->y + (size_t)id * ROWS * j->Hp;
    int i = lo;
    for (; i + ROWS <= hi; i += ROWS) project_block(j, i, y, ROWS);
    for (; i < hi; i++) project_block(j, i, y, 1);
}

/* One block of accumulate_xt_d: rows [i, i+R) into out rows [k0, k1). */
static inline __attribute__((always_inline)) void xt_d_block(const rows_job *j, int i, int k0, int k1, real *dp,
                                                             const int R) {
    const real *xr[ROWS];
    for (int r = 0; r < R; r++) {
        xr[r] = x_row(j->x, j->idx, j->ldx, i + r);
        memcpy(dp + r * j->Hp, j->d + (size_t)(i + r) * j->H, j->H * sizeof(real));
        memset(dp + r * j->Hp + j->H, 0, (j->Hp - j->H) * sizeof(real));
    }
    rows_outer(xr, dp, k0, k1, j->Hp, j->Wp, R);
}

static void xt_d_share(const void *p, int id, int n) {
    const rows_job *j = p;
    int k0, k1;
    share(j->n_in, KB, id, n, &k0, &k1);
    real *dp = j->y + (size_t)id * ROWS * j->Hp;
    int i = 0;
    for (; k0 < k1 && i + ROWS <= j->n; i += ROWS) xt_d_block(j, i, k0, k1, dp, ROWS);
    for (; k0 < k1 && i < j->n; i++) xt_d_block(j, i, k0, k1, dp, 1);
}

/* Pad W (n_in, H) into j->Wp, give each thread scratch, run fn. Returns 0, or -1 when out of memory. */
static int rows_parallel(rows_job *j, const real *W, work_fn fn, int threads) {
    j->Hp = round_up(j->H);
    j->Wp = padded(W, j->n_in, j->H, 0);
    j->y = alloc_lines((size_t)threads * ROWS * j->Hp * sizeof(real), 0);
    const int ok = j->Wp && j->y;
    if (ok) parallel(fn, j, threads);
    free(j->y);
    return ok ? 0 : -1;
}

/* out (n, H) = bias (H) + X @ W, X row i = x_row(x, idx, ldx, i) of n_in values, W (n_in, H): the input
 * projection, gathering token rows of the embedding table on the fly when idx is given.
 * Returns 0, or -1 when out of memory. */
int LN(project_rows)(const real *x, const int64_t *idx, int64_t ldx, int n, int n_in, const real *W,
                     const real *bias, real *out, int H, int threads) {
    rows_job j = {.x = x, .idx = idx, .ldx = ldx, .bias = bias, .out = out, .n = n, .n_in = n_in, .H = H};
    const int status = rows_parallel(&j, W, project_share, threads);
    free(j.Wp);
    return status;
}

/* out (n_in, H) += sum_i X_i^T D_i over rows i < n: X row i = x_row(x, idx, ldx, i) (n_in values), D (n, H).
 * The weight gradient of project_rows (dW = X^T dOut) and of the recurrence (dW_hh = sum h[t-1]^T da[t]).
 * Threads split the n_in rows of out. Returns 0, or -1 when out of memory. */
int LN(accumulate_xt_d)(const real *x, const int64_t *idx, int64_t ldx, int n, int n_in, const real *d, int H,
                        real *out, int threads) {
    rows_job j = {.x = x, .idx = idx, .ldx = ldx, .d = d, .n = n, .n_in = n_in, .H = H};
    const int status = rows_parallel(&j, out, xt_d_share, threads);  /* accumulates into padded out (j.Wp) */
    for (int k = 0; status == 0 && k < n_in; k++) memcpy(out + (size_t)k * H, j.Wp + (size_t)k * j.Hp, H * sizeof(real));
    free(j.Wp);
    return status;
}

/* The arrays of the head and of scatter_sum_rows; each function below reads the fields it documents. */
typedef struct {
    const real *h, *w, *dz, *d;
    const uint8_t *mask;
    const int64_t *where;
    real *z, *dh, *dw, *out, *acc, scale, bias;
    int64_t n;
    int T, B, H, U;
} head_job;

/* Target rows [u0, u1) of scatter_sum_rows: zeroed, then every i whose where[i] is one of them added, i
 * ascending (so the sums are those of one thread). Sharing rows of out, not columns: two threads writing parts of
 * every row would pass its cache lines back and forth. */
static void scatter_share(const void *p, int id, int n) {
    const head_job *j = p;
    int u0, u1;
    share(j->U, 1, id, n, &u0, &u1);
    memset(j->out + (size_t)u0 * j->H, 0, (size_t)(u1 - u0) * j->H * sizeof(real));
    for (int64_t i = 0; i < j->n; i++) {
        const int64_t u = j->where[i];
        if (u < u0 || u >= u1) continue;
        real *o = j->out + u * j->H;
        const real *di = j->d + i * j->H;
        for (int c = 0; c < j->H; c++) o[c] += di[c];
    }
}

/* out (U, H) = rows of d (n, H) summed by target row: out zeroed, then out[where[i]] += d[i], i ascending. The
 * gradient of a row gather. Threads split the U rows of out (zeroing them too: no separate fill pass), so each
 * sum is taken in the same order for any thread count. */
void LN(scatter_sum_rows)(const real *d, const int64_t *where, int64_t n, int H, real *out, int U, int threads) {
    head_job j = {.d = d, .where = where, .out = out, .n = n, .H = H, .U = U};
    parallel(scatter_share, &j, threads);
}

/* Rows [lo, hi) of head_forward: per (b, j) partial sums over t in order, then over j. */
static void head_forward_share(const void *p, int id, int n) {
    const head_job *j = p;
    const int T = j->T, B = j->B, H = j->H;
    int lo, hi;
    share(B, 1, id, n, &lo, &hi);
    real *acc = j->acc + (size_t)lo * H; /* rows [lo, hi) of the (B, H) work array */
    memset(acc, 0, (size_t)(hi - lo) * H * sizeof(real));
    for (int t = 0; t < T; t++)
        for (int b = lo; b < hi; b++) {
            const size_t o = ((size_t)t * B + b) * H;
            const real *wt = j->w + (size_t)t * H;
            real *ab = acc + (size_t)(b - lo) * H;
            if (j->mask) /* multiply by the 0/1 mask rather than branch: the loop vectorises */
                for (int c = 0; c < H; c++) ab[c] += (real)j->mask[o + c] * j->h[o + c] * wt[c];
            else
                for (int c = 0; c < H; c++) ab[c] += j->h[o + c] * wt[c];
        }
    for (int b = lo; b < hi; b++) {
        real s = 0;
        for (int c = 0; c < H; c++) s += acc[(size_t)(b - lo) * H + c];
        j->z[b] = j->bias + j->scale * s;
    }
}

/* Head forward: z[b] = bias + scale * sum_{t,j} mask[t,b,j] * h[t,b,j] * w[t,j]  (mask NULL: all kept).
 * That is Dense(1) over Flatten(Dropout(h)) with Keras' (B, T*H) flatten order. Partial sums are kept per
 * (b, j) so the j loop vectorises; threads split the batch rows. The (B, H) work array comes from malloc.
 * Returns 0, or -1 (no memory). */
int LN(head_forward)(const real *h, const uint8_t *mask, const real *w, real scale, real bias, real *z, int T,
                     int B, int H, int threads) {
    real *acc = malloc((size_t)B * H * sizeof(real));
    if (!acc) return -1;
    head_job j = {.h = h, .mask = mask, .w = w, .scale = scale, .bias = bias, .z = z, .acc = acc, .T = T, .B = B,
                  .H = H};
    parallel(head_forward_share, &j, threads);
    free(acc);
    return 0;
}

/* Steps [lo, hi) of head_backward; acc: H work values per share. dw[t] is summed per block of ROWS batch rows (b
 * ascending), then over the blocks in order: the order rnn_backward's fused sum takes, so the two agree bit for bit. */
static void head_backward_share(const void *p, int id, int n) {
    const head_job *j = p;
    const int B = j->B, H = j->H;
    real *acc = j->acc + (size_t)id * line_reals(H);
    int lo, hi;
    share(j->T, 1, id, n, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        real *dwt = j->dw + (size_t)t * H;
        const real *wt = j->w + (size_t)t * H;
        for (int b0 = 0; b0 < B; b0 += ROWS) {
            for (int c = 0; c < H; c++) acc[c] = 0;
            for (int b = b0; b < B && b < b0 + ROWS; b++) {
                const size_t o = ((size_t)t * B + b) * H;
                const real g = j->dz[b] * j->scale;
                if (j->mask && j->dh)
                    for (int c = 0; c < H; c++) {
                        const real m = (real)j->mask[o + c] * g;
                        j->dh[o + c] = m * wt[c];
                        acc[c] += m * j->h[o + c];
                    }
                else if (j->mask)
                    for (int c = 0; c < H; c++) acc[c] += (real)j->mask[o + c] * g * j->h[o + c];
                else if (j->dh)
                    for (int c = 0; c < H; c++) {
                        j->dh[o + c] = g * wt[c];
                        acc[c] += g * j->h[o + c];
                    }
                else
                    for (int c = 0; c < H; c++) acc[c] += g * j->h[o + c];
            }
            for (int c = 0; c < H; c++) dwt[c] = b0 ? dwt[c] + acc[c] : acc[c];
        }
    }
}

/* Head backward from dz (B,): dh[t,b,j] = dz[b] * scale * mask * w[t,j] (not written when dh is NULL: rnn_backward
 * computes it);  dw[t,j] = scale * sum_b dz[b] * mask * h. Threads split the time steps. Returns 0, or -1 (no
 * memory). */
int LN(head_backward)(const real *dz, const real *h, const uint8_t *mask, const real *w, real scale, real *dh,
                      real *dw, int T, int B, int H, int threads) {
    real *acc = alloc_lines((size_t)(threads < 1 ? 1 : threads) * line_reals(H) * sizeof(real), 0);
    if (!acc) return -1;
    head_job j = {.dz = dz, .h = h, .mask = mask, .w = w, .scale = scale, .dh = dh, .dw = dw, .acc = acc, .T = T,
                  .B = B, .H = H};
    parallel(head_backward_share, &j, threads);
    free(acc);
    return 0;
}

#if defined(LN_REAL_F32) /* type-independent functions: built once */
/* tokens (U,) = the distinct values of ids (n,) in order of first appearance, where (n,) = each id's index
 * in tokens; slot is a (V,) int32 work array. Returns U, or -1 when an id is outside [0, V). */
int64_t unique_ids(const int64_t *ids, int64_t n, int64_t V, int32_t *slot, int64_t *tokens, int64_t *where) {
    int64_t U = 0;
    memset(slot, 0xff, (size_t)V * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        const int64_t id = ids[i];
        if (id < 0 || id >= V) return -1;
        if (slot[id] < 0) {
            slot[id] = (int32_t)U;
            tokens[U++] = id;
        }
        where[i] = slot[id];
    }
    return U;
}

/* 32-bit integer mixer (murmur3's finaliser). */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x85ebca6bu;
    x ^= x >> 13; x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

/* mix32 on every lane: VBYTES / 4 counters at once (the scalar loop does not vectorise: ~5x slower). */
typedef uint32_t vu32 __attribute__((vector_size(VBYTES)));
typedef uint8_t vu8 __attribute__((vector_size(VBYTES / 4)));
#define UL ((int)(VBYTES / 4))
static inline vu32 vmix32(vu32 x) {
    x ^= x >> 16; x *= 0x85ebca6bu;
    x ^= x >> 13; x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

typedef struct { uint8_t *mask; int64_t n; uint32_t k0, k1, keep; } mask_job;

static void mask_share(const void *p, int id, int n) {
    const mask_job *j = p;
    const int64_t lo = j->n * id / n, hi = j->n * (id + 1) / n;
    vu32 lane;
    for (int l = 0; l < UL; l++) lane[l] = (uint32_t)l;
    int64_t i = lo;
    for (; i + UL <= hi; i += UL) {
        const vu32 x = vmix32(vmix32(((vu32){0} + (uint32_t)i + lane) ^ j->k0) + j->k1);
        const vu8 kept = __builtin_convertvector((x < j->keep) & 1, vu8);
        memcpy(j->mask + i, &kept, UL);
    }
    for (; i < hi; i++) j->mask[i] = mix32(mix32((uint32_t)i ^ j->k0) + j->k1) < j->keep;
}

/* Dropout mask: mask[i] = 1 with probability keep / 2^32, else 0, i in [0, n), n < 2^32. Counter-based:
 * element i depends only on (seed, i), so the mask is reproducible from the seed and the same for any
 * thread count (threads split i). Two rounds of mix32 keyed by the two halves of the 64-bit seed. */
void dropout_mask(uint8_t *mask, int64_t n, uint64_t seed, uint32_t keep, int threads) {
    mask_job j = {.mask = mask, .n = n, .k0 = (uint32_t)seed, .k1 = (uint32_t)(seed >> 32), .keep = keep};
    parallel(mask_share, &j, threads);
}
#endif
