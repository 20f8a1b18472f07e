/*
 * Fused LSTM and GRU recurrences (forward and BPTT) for loopynet's recurrent classifier and tagger, with
 * torch.nn.LSTM / torch.nn.GRU semantics (gate order i, f, g, o and r, z, n; GRU "reset after": the reset
 * gate multiplies W_hn h + b_hn, as torch and cuDNN do).
 *
 * Only the sequential part is here: the input projection gx = x @ W_ih^T + b_ih over all steps, its
 * gradients and dW_hh = sum_t dgh[t]^T h[t-1] are single large matrix products done by torch (BLAS).
 * Each step's h_prev @ W_hh^T, the gate nonlinearities and the state update are fused into one pass over
 * a register tile of batch rows, and so is the backward step.
 *
 * Plain C99 with GCC/Clang vector extensions; fast_kernel.py compiles this file twice (-DLN_REAL_F32,
 * symbols *_f32, and -DLN_REAL_F64, symbols *_f64) into the same library as kernel.c and calls it through
 * ctypes; what the two share (types, vectors, the row matmul, tanh, the worker pool) is in kernel_common.h.
 *
 * Symbols: T time steps, B batch rows, H units, G gates (LSTM 4, GRU 3), GH = G * H. All arrays are
 * contiguous, row-major and time-major:
 *   gx, gates, dgx, dgh : (T, B, GH)   h, c, dh : (T, B, H)   h0, c0, dhT, dcT, dh0, dc0 : (B, H)
 *   W_hh : (GH, H), torch layout (gates = h_prev @ W_hh^T)      b_hh : (GH)
 *
 * Batch rows are independent in both directions, so each thread (kernel_common.h's pool) runs all T steps
 * for its own contiguous block of rows: no synchronisation inside the time loop.
 */
#include "kernel_common.h"

/* logistic sigmoid: 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2. */
static inline real sigmoid_r(real x) { return (real)0.5 + (real)0.5 * tanh_real((real)0.5 * x); }

/* Everything one call works on, for one direction. Step s of batch row b is at position pos(b, s): s, or, with
 * lengths, s reversed within the row's length (the backward direction of a bidirectional layer). Row i = t B + b
 * of gx is gx + (where ? where[i] : i) * ldg (where: gather rows of a per-token projection); rows of h and dh
 * have stride ldh, rows of dgx stride ldd (so directions can share (T, B, 2 ...) arrays), the rest are dense.
 * hprev[i] = the state before the step at position t (what dW_hh = sum dgh^T hprev needs).
 * Wp: W_hh^T padded to (H, GHp) (forward) or W_hh padded to (GH, Hp) (backward); y: ROWS x ldy scratch values
 * per thread. */
typedef struct {
    const real *gx, *b, *h0, *c0, *dh, *dcT;
    const int64_t *where, *lengths;
    real *h, *hprev, *c, *gates, *dgx, *dgh, *dh0, *dc0;
    real *Wp, *y;
    int64_t ldg, ldh, ldd;
    int T, B, H, G, ldy;
} cell_job;

static inline int64_t pos(const cell_job *j, int b, int s) {
    if (!j->lengths) return s;
    const int64_t n = j->lengths[b];
    return s < n ? n - 1 - s : s;
}

/* Row indices of rows [b, b + R) at step s: at[r] = pos t B + b + r, prev[r] = that of step s - 1 (-1 at s = 0). */
static inline void step_rows(const cell_job *j, int s, int b, int R, int64_t *at, int64_t *prev) {
    for (int r = 0; r < R; r++) {
        at[r] = pos(j, b + r, s) * j->B + b + r;
        prev[r] = s ? pos(j, b + r, s - 1) * j->B + b + r : -1;
    }
}

/* y rows (R, Np) = bias + (gx rows at[r], or 0), padding zeroed. */
static inline void start_rows(const cell_job *j, real *y, int Np, int n, const int64_t *at, int with_gx, int R) {
    for (int r = 0; r < R; r++) {
        real *yr = y + (size_t)r * Np;
        if (with_gx) {
            const real *gr = j->gx + (j->where ? j->where[at[r]] : at[r]) * j->ldg;
            for (int k = 0; k < n; k++) yr[k] = j->b[k] + gr[k];
        } else {
            memcpy(yr, j->b, n * sizeof(real));
        }
        memset(yr + n, 0, (Np - n) * sizeof(real));
    }
}

/* xr[r] = h_prev of row b + r (h0 at s = 0), also copied to hprev. */
static inline void prev_states(const cell_job *j, int b, const int64_t *at, const int64_t *prev, const real **xr,
                               int R) {
    for (int r = 0; r < R; r++) {
        xr[r] = prev[r] < 0 ? j->h0 + (size_t)(b + r) * j->H : j->h + prev[r] * j->ldh;
        memcpy(j->hprev + at[r] * j->H, xr[r], j->H * sizeof(real));
    }
}

/* ---- LSTM: i, f, g, o = sig(a_i), sig(a_f), tanh(a_g), sig(a_o);  c = f c_prev + i g;  h = o tanh(c) ---- */

/* One row of a step (the gate loops are separate functions: GCC vectorises them only there). */
static void lstm_gates(const real *restrict a, const real *restrict cp, real *restrict g, real *restrict c,
                       real *restrict h, int H) {
    for (int k = 0; k < H; k++) {
        const real i = sigmoid_r(a[k]), f = sigmoid_r(a[H + k]), gg = tanh_real(a[2 * H + k]);
        const real o = sigmoid_r(a[3 * H + k]);
        const real ck = f * cp[k] + i * gg;
        g[k] = i, g[H + k] = f, g[2 * H + k] = gg, g[3 * H + k] = o;
        c[k] = ck;
        h[k] = o * tanh_real(ck);
    }
}

static void lstm_gates_backward(const real *restrict g, const real *restrict c, const real *restrict cp,
                                const real *restrict dh, const real *restrict dhn, real *restrict dcn, real *restrict da,
                                int H) {
    for (int k = 0; k < H; k++) {
        const real i = g[k], f = g[H + k], gg = g[2 * H + k], o = g[3 * H + k];
        const real tc = tanh_real(c[k]), dht = dh[k] + dhn[k];
        const real dc = dcn[k] + dht * o * (1 - tc * tc);
        da[k] = dc * gg * i * (1 - i);
        da[H + k] = dc * cp[k] * f * (1 - f);
        da[2 * H + k] = dc * i * (1 - gg * gg);
        da[3 * H + k] = dht * tc * o * (1 - o);
        dcn[k] = dc * f;
    }
}

/* ---- GRU: r, z = sig(gx_r + hh_r), sig(gx_z + hh_z);  n = tanh(gx_n + r hh_n);  h = (1 - z) n + z h_prev,
 * hh = h_prev @ W_hh^T + b_hh. gates[t] holds r, z, n and hh_n. ---- */

static void gru_gates(const real *restrict hh, const real *restrict gx, const real *restrict hp, real *restrict g,
                      real *restrict h, int H) {
    for (int k = 0; k < H; k++) {
        const real rg = sigmoid_r(gx[k] + hh[k]), z = sigmoid_r(gx[H + k] + hh[H + k]);
        const real n = tanh_real(gx[2 * H + k] + rg * hh[2 * H + k]);
        g[k] = rg, g[H + k] = z, g[2 * H + k] = n, g[3 * H + k] = hh[2 * H + k];
        h[k] = (1 - z) * n + z * hp[k];
    }
}

/* y[k] = the direct path's gradient dh_t z (h_prev -> h), to which the caller adds dgh @ W_hh. */
static void gru_gates_backward(const real *restrict g, const real *restrict hp, const real *restrict dh,
                               const real *restrict dhn, real *restrict dx, real *restrict dhh, real *restrict y,
                               int H) {
    for (int k = 0; k < H; k++) {
        const real rg = g[k], z = g[H + k], n = g[2 * H + k], hn = g[3 * H + k];
        const real dht = dh[k] + dhn[k];
        const real dan = dht * (1 - z) * (1 - n * n);
        const real dar = dan * hn * rg * (1 - rg), daz = dht * (hp[k] - n) * z * (1 - z);
        dx[k] = dhh[k] = dar;
        dx[H + k] = dhh[H + k] = daz;
        dx[2 * H + k] = dan;
        dhh[2 * H + k] = dan * rg;
        y[k] = dht * z;
    }
}

/* ---- The forward step of either cell ---- */

/* The forward step for rows [b, b + R) at step s: y = bias (+ the gx rows for the LSTM; the GRU adds its gx
 * inside the gates, as r multiplies only the recurrent part of n) + h_prev @ W_hh^T, then each row's gates. */
static inline __attribute__((always_inline)) void forward_rows(const cell_job *j, int s, int b, const int R) {
    const int H = j->H, GH = j->G * H, Np = round_up(GH);
    int64_t at[ROWS], prev[ROWS];
    const real *xr[ROWS];
    step_rows(j, s, b, R, at, prev);
    prev_states(j, b, at, prev, xr, R);
    start_rows(j, j->y, Np, GH, at, j->G == 4, R);
    rows_matmul(xr, j->Wp, H, Np, j->y, R);
    for (int r = 0; r < R; r++) {
        const real *y = j->y + (size_t)r * Np;
        real *g = j->gates + at[r] * 4 * H, *h = j->h + at[r] * j->ldh;
        if (j->G == 4) {
            const real *c_prev = prev[r] < 0 ? j->c0 + (size_t)(b + r) * H : j->c + prev[r] * H;
            lstm_gates(y, c_prev, g, j->c + at[r] * H, h, H);
        } else {
            gru_gates(y, j->gx + (j->where ? j->where[at[r]] : at[r]) * j->ldg, xr[r], g, h, H);
        }
    }
}

/* ---- BPTT of either cell: dh_next (and the LSTM's dc_next) live in dh0 (dc0) (B, H) while the steps run ---- */

/* The backward step for rows [b, b + R) at step s. Each row's gate gradients first: LSTM, dgx rows = da, the
 * gradient of the gates' pre-activations (of gx, of b_ih and b_hh, and of h_prev @ W_hh^T alike); GRU, dgx rows
 * (stride ldd) and dgh rows (dense), the gradients of gx and of h_prev @ W_hh^T + b_hh, with y = the direct
 * path's dh_t z. Then dh_next = y + (those rows of da, or of dgh) @ W_hh. */
static inline __attribute__((always_inline)) void backward_rows(const cell_job *j, int s, int b, const int R) {
    const int H = j->H, GH = j->G * H, Np = round_up(H);
    int64_t at[ROWS], prev[ROWS];
    const real *xr[ROWS];
    step_rows(j, s, b, R, at, prev);
    for (int r = 0; r < R; r++) {
        real *y = j->y + (size_t)r * Np, *dx = j->dgx + at[r] * j->ldd, *dhn = j->dh0 + (size_t)(b + r) * H;
        const real *g = j->gates + at[r] * 4 * H, *dh = j->dh + at[r] * j->ldh;
        if (j->G == 4) {
            const real *c_prev = prev[r] < 0 ? j->c0 + (size_t)(b + r) * H : j->c + prev[r] * H;
            lstm_gates_backward(g, j->c + at[r] * H, c_prev, dh, dhn, j->dc0 + (size_t)(b + r) * H, dx, H);
            memset(y, 0, Np * sizeof(real));
            xr[r] = dx;
        } else {
            real *dhh = j->dgh + at[r] * GH;
            gru_gates_backward(g, j->hprev + at[r] * H, dh, dhn, dx, dhh, y, H);
            memset(y + H, 0, (Np - H) * sizeof(real));
            xr[r] = dhh;
        }
    }
    rows_matmul(xr, j->Wp, GH, Np, j->y, R);
    for (int r = 0; r < R; r++) memcpy(j->dh0 + (size_t)(b + r) * H, j->y + (size_t)r * Np, H * sizeof(real));
}

/* One thread's rows for all T steps, forward or backward (steps in reverse). */
#define SHARE(name, rows_fn, FIRST, NEXT, COND)                                              \
    static void name(const void *p, int id, int n) {                                         \
        cell_job j = *(const cell_job *)p;                                                    \
        int lo, hi;                                                                           \
        share(j.B, ROWS, id, n, &lo, &hi);                                                    \
        j.y += (size_t)id * ROWS * j.ldy;                                                     \
        for (int s = FIRST; COND; s = NEXT) {                                                 \
            int b = lo;                                                                       \
            for (; b + ROWS <= hi; b += ROWS) rows_fn(&j, s, b, ROWS);                        \
            for (; b < hi; b++) rows_fn(&j, s, b, 1);                                         \
        }                                                                                     \
    }
SHARE(forward_share, forward_rows, 0, s + 1, s < j.T)
SHARE(backward_share, backward_rows, j.T - 1, s - 1, s >= 0)

/* Pad W_hh (transposed for the forward), give each thread scratch, run fn on up to `threads` threads.
 * Returns 0, or -1 when out of memory. */
static int run(cell_job *j, const real *W_hh, int backward, work_fn fn, int threads) {
    const int GH = j->G * j->H;
    j->ldy = round_up(GH);
    j->Wp = backward ? padded(W_hh, GH, j->H, 0) : padded(W_hh, j->H, GH, 1);
    j->y = alloc_lines((size_t)threads * ROWS * j->ldy * sizeof(real), 0);
    const int ok = j->Wp && j->y;
    if (ok) parallel(fn, j, threads);
    free(j->Wp);
    free(j->y);
    return ok ? 0 : -1;
}

/* LSTM forward, one direction: h (rows of stride ldh), hprev, c (T, B, H) and gates (T, B, 4H) = i, f, g, o
 * from gx rows (x @ W_ih^T + b_ih; see cell_job for where, ldg, lengths), W_hh (4H, H), b_hh (4H),
 * h0, c0 (B, H). Returns 0, or -1 when out of memory. */
int LN(lstm_forward)(const real *gx, const int64_t *where, int64_t ldg, const int64_t *lengths, const real *W_hh,
                     const real *b_hh, const real *h0, const real *c0, real *h, int64_t ldh, real *hprev, real *c,
                     real *gates, int T, int B, int H, int threads) {
    cell_job j = {.gx = gx, .where = where, .ldg = ldg, .lengths = lengths, .b = b_hh, .h0 = h0, .c0 = c0, .h = h,
                  .ldh = ldh, .hprev = hprev, .c = c, .gates = gates, .T = T, .B = B, .H = H, .G = 4};
    return run(&j, W_hh, 0, forward_share, threads);
}

/* LSTM BPTT, one direction, from dh (rows of stride ldh) = dloss/dh from outside the recurrence and dcT (B, H)
 * = dloss/dc after the last step: dgx (rows of stride ldd: the gradient of gx, and summed of b_ih and b_hh),
 * dh0, dc0 (B, H). dW_hh = sum dgx^T hprev is left to the caller. Returns 0, or -1 when out of memory. */
int LN(lstm_backward)(const real *dh, int64_t ldh, const real *dcT, const int64_t *lengths, const real *W_hh,
                      const real *c0, const real *c, const real *gates, real *dgx, int64_t ldd, real *dh0, real *dc0,
                      int T, int B, int H, int threads) {
    cell_job j = {.dh = dh, .ldh = ldh, .lengths = lengths, .c0 = c0, .c = (real *)c, .gates = (real *)gates,
                  .dgx = dgx, .ldd = ldd, .dh0 = dh0, .dc0 = dc0, .T = T, .B = B, .H = H, .G = 4};
    memset(dh0, 0, (size_t)B * H * sizeof(real));
    memcpy(dc0, dcT, (size_t)B * H * sizeof(real));
    return run(&j, W_hh, 1, backward_share, threads);
}

/* GRU forward, one direction: h (rows of stride ldh), hprev (T, B, H) and gates (T, B, 4H) = r, z, n,
 * W_hn h_prev + b_hn from gx rows (x @ W_ih^T + b_ih; see cell_job), W_hh (3H, H), b_hh (3H), h0 (B, H).
 * Returns 0, or -1 when out of memory. */
int LN(gru_forward)(const real *gx, const int64_t *where, int64_t ldg, const int64_t *lengths, const real *W_hh,
                    const real *b_hh, const real *h0, real *h, int64_t ldh, real *hprev, real *gates, int T, int B,
                    int H, int threads) {
    cell_job j = {.gx = gx, .where = where, .ldg = ldg, .lengths = lengths, .b = b_hh, .h0 = h0, .h = h, .ldh = ldh,
                  .hprev = hprev, .gates = gates, .T = T, .B = B, .H = H, .G = 3};
    return run(&j, W_hh, 0, forward_share, threads);
}

/* GRU BPTT, one direction, from dh (rows of stride ldh): dgx (rows of stride ldd: gradient of gx and, summed,
 * of b_ih), dgh (T, B, 3H: gradient of h_prev @ W_hh^T + b_hh; dW_hh = sum dgh^T hprev is left to the caller)
 * and dh0 (B, H). Returns 0, or -1 when out of memory. */
int LN(gru_backward)(const real *dh, int64_t ldh, const int64_t *lengths, const real *W_hh, const real *hprev,
                     const real *gates, real *dgx, int64_t ldd, real *dgh, real *dh0, int T, int B, int H,
                     int threads) {
    cell_job j = {.dh = dh, .ldh = ldh, .lengths = lengths, .hprev = (real *)hprev, .gates = (real *)gates,
                  .dgx = dgx, .ldd = ldd, .dgh = dgh, .dh0 = dh0, .T = T, .B = B, .H = H, .G = 3};
    memset(dh0, 0, (size_t)B * H * sizeof(real));
    return run(&j, W_hh, 1, backward_share, threads);
}
