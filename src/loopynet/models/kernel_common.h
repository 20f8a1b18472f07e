/*
 * What loopynet's two kernel sources (kernel.c: SimpleRNN, projections, head; cells_kernel.c: fused LSTM/GRU)
 * share: the real type of the build, the vector width and register tile, the register-tiled row matmul, tanh,
 * padding and work sharing, and the persistent worker pool every multi-threaded kernel runs on.
 *
 * Each source is compiled twice, with -DLN_REAL_F32 (float, symbols *_f32) and -DLN_REAL_F64 (double, *_f64);
 * the pool is type-independent and defined once, in kernel.c's float build (LN_DEFINE_POOL), for the whole
 * library.
 */
#ifndef LN_KERNEL_COMMON_H
#define LN_KERNEL_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(LN_REAL_F32)
typedef float real;
#define LN(name) name##_f32
#elif defined(LN_REAL_F64)
typedef double real;
#define LN(name) name##_f64
#else
#error "compile with -DLN_REAL_F32 or -DLN_REAL_F64"
#endif

/* One vector is one register of the widest vector unit the build targets: 64 bytes with AVX-512 (32
 * registers), 32 with AVX/AVX2 (16 registers), else 16 (SSE2, NEON): 64-byte vectors on 16 registers
 * spill the register tiles (measured 3x slower than these). A tile holds ROWS x 2 accumulators plus the
 * vectors they multiply: 8 rows fit in 32 registers, 4 in 16 (the fastest of 4, 6, 8 measured built for
 * x86-64-v3). -D overrides are for measuring only. */
#ifndef VBYTES
#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
#endif
#ifndef ROWS
#if defined(__AVX512F__)
#define ROWS 8
#else
#define ROWS 4
#endif
#endif
#define VL ((int)(VBYTES / sizeof(real)))  /* lanes per vector */
typedef real vreal __attribute__((vector_size(VBYTES)));

static inline vreal vload(const real *p) { vreal v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(real *p, vreal v) { memcpy(p, &v, sizeof v); }
/* s in every lane, as one broadcast: s * 1 folds away exactly (`(vreal){0} + s` would be a real add, as
 * 0.0 + -0.0 is +0.0, then a shuffle: two more instructions per broadcast on the FMA ports). */
static inline vreal splat(real s) { return s * ((vreal){0} + 1); }

/* tanh. float: the rational [13/6] minimax approximation used by Eigen and XLA (clamped at +-7.905,
 * where tanh rounds to +-1; max error a few float ulps; NaN in, NaN out); the selects become vector
 * blends, so loops over it vectorise. double: libm. */
static inline real tanh_real(real x) {
#if defined(LN_REAL_F32)
    const float c = 7.90531110763549805f;
    float y = x > c ? c : x;
    y = y < -c ? -c : y;
    const float y2 = y * y;
    float p = -2.76076847742355e-16f;
    p = p * y2 + 2.00018790482477e-13f;
    p = p * y2 + -8.60467152213735e-11f;
    p = p * y2 + 5.12229709037114e-08f;
    p = p * y2 + 1.48572235717979e-05f;
    p = p * y2 + 6.37261928875436e-04f;
    p = p * y2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * y2 + 1.18534705686654e-04f;
    q = q * y2 + 2.26843463243900e-03f;
    q = q * y2 + 4.89352518554385e-03f;
    const float r = y * p / q;
    return fabsf(x) < 0.0004f ? x : r;
#else
    return tanh(x);
#endif
}

/* Keep a vector in a register: GCC would otherwise re-load it as a memory operand of every FMA that uses
 * it (load-bound; measured 10-25% slower with AVX-512). */
#if defined(__AVX512F__)
#define PIN(v) __asm__("" : "+v"(v))
#elif defined(__SSE2__)
#define PIN(v) __asm__("" : "+x"(v))
#else
#define PIN(v) ((void)0)
#endif

/* Columns [c, c + NC*VL) of y (R, Np) += X @ Wp, NC <= 2: R x NC accumulators in registers. */
static inline __attribute__((always_inline)) void tile_matmul(
    const real *const *xr, const real *Wp, int n_in, int Np, int c, real *y, const int R, const int NC) {
    vreal acc[ROWS][2];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < NC; q++) acc[r][q] = vload(y + r * Np + c + q * VL);
    for (int k = 0; k < n_in; k++) {
        vreal w[2];
        for (int q = 0; q < NC; q++) { w[q] = vload(Wp + (size_t)k * Np + c + q * VL); PIN(w[q]); }
        for (int r = 0; r < R; r++) {
            vreal x = splat(xr[r][k]);
            if (NC > 1) PIN(x);
            for (int q = 0; q < NC; q++) acc[r][q] += x * w[q];
        }
    }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < NC; q++) vstore(y + r * Np + c + q * VL, acc[r][q]);
}

/* y (R, Np) += X @ Wp: X is R rows xr[r] of n_in values, Wp (n_in, Np) with zero padding columns, Np the
 * output width rounded up to VL. R is a compile-time constant at each call site (ROWS or 1). */
static inline __attribute__((always_inline)) void rows_matmul(
    const real *const *xr, const real *Wp, int n_in, int Np, real *y, const int R) {
    int c = 0;
    for (; c + 2 * VL <= Np; c += 2 * VL) tile_matmul(xr, Wp, n_in, Np, c, y, R, 2);
    if (c < Np) tile_matmul(xr, Wp, n_in, Np, c, y, R, 1);
}

/* n rounded up to whole vectors. */
static inline int round_up(int n) { return (n + VL - 1) / VL * VL; }

/* Work memory of `bytes` on whole cache lines (64-byte aligned, the size rounded up to lines), zeroed when `zero`;
 * NULL: no memory; free() releases it. Scratch and partial sums that threads write share by share start on a line
 * of their own: with malloc's 16-byte alignment the line across a share boundary was written by two threads at
 * once, every time step (false sharing). */
static inline void *alloc_lines(size_t bytes, int zero) {
    void *p = NULL;
    const size_t size = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, size ? size : 64)) return NULL;
    if (zero) memset(p, 0, size);
    return p;
}

/* n reals rounded up to whole cache lines: the stride of per-share or per-block parts of alloc_lines memory. */
static inline size_t line_reals(size_t n) {
    const size_t per = 64 / sizeof(real);
    return (n + per - 1) / per * per;
}

/* (rows, round_up(cols)) copy of W (rows, cols), or of W^T when W is (cols, rows), zero-padded; NULL: no
 * memory. */
static inline real *padded(const real *W, int rows, int cols, int transpose) {
    const int Np = round_up(cols);
    real *Wp = alloc_lines((size_t)rows * Np * sizeof(real), 1);
    if (!Wp) return NULL;
    for (int k = 0; k < rows; k++)
        for (int j = 0; j < cols; j++)
            Wp[(size_t)k * Np + j] = transpose ? W[(size_t)j * rows + k] : W[(size_t)k * cols + j];
    return Wp;
}

/* Rows [lo, hi) of thread `id` of `n` when [0, total) is shared in whole units of `unit` rows. */
static inline void share(int total, int unit, int id, int n, int *lo, int *hi) {
    const long units = (total + unit - 1) / unit;
    *lo = (int)(units * id / n) * unit;
    *hi = (int)(units * (id + 1) / n) * unit;
    if (*hi > total) *hi = total;
    if (*lo > total) *lo = total;
}

/* ---- The worker pool ----
 * parallel(fn, job, n) runs fn(job, id, n) once for every share id in [0, n) and returns when all have run.
 * The caller and up to n - 1 pool workers claim share ids: each first its own (the caller 0, worker w w + 1,
 * so the same rows stay on the same core, in its cache, from call to call), then any left; so a worker that is
 * slow to wake (asleep, or descheduled on a busy machine) leaves its share to whoever is free instead of
 * holding up the call.
 * Every kernel writes a share's results (and uses its scratch) by share id, never by thread, so the results
 * are those of n shares whichever threads run them.
 * The workers are started once, at the first call that needs them (growing to the largest n - 1 asked for, at
 * most MAX_THREADS - 1), then park between calls: a waiting thread polls for POOL_SPIN rounds (a CPU pause
 * hint each, and every POOL_YIELD rounds a sched_yield), then sleeps on a condition variable; so a call costs a wake-up rather than a pthread_create and join
 * (the book network makes ~10 calls a training step), and an idle pool costs no CPU.
 * A call made while another is running (another Python thread: ctypes releases the GIL) runs every share on
 * its caller. After fork() the child has no workers (pthread_atfork) and starts its own; at exit they are
 * stopped and joined. */
#define MAX_THREADS 64
typedef void (*work_fn)(const void *job, int id, int n);
__attribute__((visibility("hidden"))) void parallel(work_fn fn, const void *job, int n);

#if defined(LN_DEFINE_POOL)
#include <pthread.h>

#include <sched.h>

#ifndef POOL_SPIN
#define POOL_SPIN 2000 /* polls before a waiting thread sleeps (~0.1-0.3 ms) */
#endif
#ifndef POOL_YIELD
#define POOL_YIELD 4 /* polls between two sched_yield() of a waiting thread (0: none) */
#endif

/* Between two polls: a CPU pause hint, and every POOL_YIELD polls the core to any other runnable thread. A
 * worker polling without yielding holds its core against a thread woken there, such as a torch OpenMP worker
 * of the op right after a kernel call: that op waited out the whole spin (measured on a 2-core machine at load
 * average 3.5: a (1950, 50) sum on 2 threads right after a kernel call took 14 us with no spin, 60 us after
 * 4,000 polls of pause hints alone, 460 us after 40,000; 17 us with a yield every 4 polls). POOL_SPIN and
 * POOL_YIELD (-D) are for measuring only. */
static inline void cpu_relax(int poll) {
    if (POOL_YIELD && poll % POOL_YIELD == POOL_YIELD - 1) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The published call is one word: generation << 8 | n (n 0: stop). Share id of generation g is claimed by
 * raising taken[id] from below g to g (compare-and-swap), so exactly once, and never for a call that is over
 * (all its shares are taken); fn and job are read only after a claim succeeds, and the caller publishes the
 * next call only once every share of this one has run (`finished`), so they are never read while being
 * replaced. */
#define GEN(w) ((w) >> 8)
#define SHARES(w) ((int)((w)&255))
static struct {
    pthread_mutex_t call;  /* held for a whole call: one call at a time */
    pthread_mutex_t lock;  /* for the condition variables (and sleepers, waiting) */
    pthread_cond_t wake, done;
    uint64_t word;         /* atomic */
    int finished;          /* shares of this call that have run (atomic) */
    int sleepers, waiting; /* workers asleep on wake; the caller asleep on done (atomic, changed under lock) */
    int workers;           /* started */
    work_fn fn;
    const void *job;
    uint64_t taken[MAX_THREADS]; /* per share id: the last generation that claimed it (atomic) */
    pthread_t ids[MAX_THREADS];
} pool = {.call = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* The published word once its generation differs from `seen`'s: poll, then sleep. The sleeper's seq_cst
 * increment of sleepers, then load of word, against publish's seq_cst store of word, then load of sleepers: one
 * of the two sees the other's write, so no wake-up is lost. */
static uint64_t await_call(uint64_t seen) {
    uint64_t word;
    for (int i = 0; i < POOL_SPIN; i++) {
        if (GEN(word = __atomic_load_n(&pool.word, __ATOMIC_ACQUIRE)) != GEN(seen)) return word;
        cpu_relax(i);
    }
    pthread_mutex_lock(&pool.lock);
    __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
    while (GEN(word = __atomic_load_n(&pool.word, __ATOMIC_SEQ_CST)) == GEN(seen))
        pthread_cond_wait(&pool.wake, &pool.lock);
    __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&pool.lock);
    return word;
}

static int claim(int id, uint64_t gen) {
    uint64_t taken = __atomic_load_n(&pool.taken[id], __ATOMIC_ACQUIRE);
    while (taken < gen)
        if (__atomic_compare_exchange_n(&pool.taken[id], &taken, gen, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 1;
    return 0;
}

/* Run share `own` of the call published as `word` if no one has, then every share left. */
static void run_shares(uint64_t word, int own) {
    const uint64_t gen = GEN(word);
    const int n = SHARES(word);
    for (int k = -1; k < n; k++) {
        const int id = k < 0 ? own : k;
        if (id >= n || !claim(id, gen)) continue;
        pool.fn(pool.job, id, n);
        if (__atomic_add_fetch(&pool.finished, 1, __ATOMIC_SEQ_CST) == n &&
            __atomic_load_n(&pool.waiting, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

/* Worker `own` (1, 2, ...): its own share is `own`. It starts from word 0, so a call published before it ran
 * is not missed (one already over finds every share taken). */
static void *pool_worker(void *arg) {
    const int own = (int)(intptr_t)arg;
    uint64_t word = 0;
    for (;;) {
        word = await_call(word);
        if (SHARES(word) == 0) return NULL;
        run_shares(word, own);
    }
}

/* Publish word (the caller holds pool.call) and wake sleeping workers. */
static void publish(uint64_t word) {
    __atomic_store_n(&pool.word, word, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
}

/* Until all n shares have run: poll, then sleep (the same pairing as await_call's, on waiting and finished). */
static void await_shares(int n) {
    for (int i = 0; i < POOL_SPIN; i++) {
        if (__atomic_load_n(&pool.finished, __ATOMIC_ACQUIRE) == n) return;
        cpu_relax(i);
    }
    pthread_mutex_lock(&pool.lock);
    __atomic_store_n(&pool.waiting, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&pool.finished, __ATOMIC_SEQ_CST) != n) pthread_cond_wait(&pool.done, &pool.lock);
    __atomic_store_n(&pool.waiting, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&pool.lock);
}

/* fork(): the prepare handler takes the locks, so the child starts between calls; the child has none of the
 * workers, so it forgets them and re-initialises the condition variables (their waiters did not fork). */
static void pool_prepare(void) { pthread_mutex_lock(&pool.call); pthread_mutex_lock(&pool.lock); }
static void pool_parent(void) { pthread_mutex_unlock(&pool.lock); pthread_mutex_unlock(&pool.call); }
static void pool_child(void) {
    pool.workers = pool.sleepers = pool.waiting = 0;
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool_parent();
}
static void pool_register(void) { pthread_atfork(pool_prepare, pool_parent, pool_child); }

/* Start workers until there are `want` (the caller holds pool.call); stops at the first that cannot start. */
static void grow(int want) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, pool_register);
    for (; pool.workers < want; pool.workers++)
        if (pthread_create(&pool.ids[pool.workers], NULL, pool_worker, (void *)(intptr_t)(pool.workers + 1))) return;
}

void parallel(work_fn fn, const void *job, int n) {
    n = n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n);
    if (n == 1 || pthread_mutex_trylock(&pool.call)) {
        for (int id = 0; id < n; id++) fn(job, id, n);
        return;
    }
    grow(n - 1);
    pool.fn = fn;
    pool.job = job;
    __atomic_store_n(&pool.finished, 0, __ATOMIC_RELAXED);
    const uint64_t word = (GEN(pool.word) + 1) << 8 | (uint64_t)n;
    publish(word);
    run_shares(word, 0);
    await_shares(n);
    pthread_mutex_unlock(&pool.call);
}

/* At exit: stop and join the workers, unless a call is running (then the process ends with them). */
__attribute__((destructor)) static void pool_stop(void) {
    if (!pool.workers || pthread_mutex_trylock(&pool.call)) return;
    publish((GEN(pool.word) + 1) << 8);
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.ids[i], NULL);
    pool.workers = 0;
    pthread_mutex_unlock(&pool.call);
}
#endif /* LN_DEFINE_POOL */

#endif /* LN_KERNEL_COMMON_H */
