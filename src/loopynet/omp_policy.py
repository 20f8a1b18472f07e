"""How OpenMP's idle threads wait, chosen per run (issue 17, measured: benchmarks/omp_policy.py).

PyTorch's CPU ops run on an OpenMP (libgomp) thread pool whose idle threads spin for a while after
each parallel region before they sleep. loopynet's compiled kernels (models/kernel.c, cells_kernel.c)
run on their own pthreads, between torch ops: with OpenMP's default the spinning workers take the cores
those threads need (on the idle 2-core machine the book's network trained at 4,053 samples/s with
`OMP_WAIT_POLICY=PASSIVE` against 3,342 with the default, 1.21x; imdb-rnn 1.03x). Where torch's own ops
dominate the step (the pure-PyTorch path, CUDA, the tagger: 0.87x with PASSIVE idle), spinning is what
makes their many small parallel regions fast, unless the machine is already busier than its cores, where
spinning steals the CPU from the threads doing the work (3.6-11x slower at load average 7-11).

So: PASSIVE when the caller says the compiled kernels carry the step (`compiled_kernels`: the CLI's
classifier commands); otherwise PASSIVE only when the 1-minute load average is at least the number of
CPUs; never over a value the user set. libgomp reads the variable once, when torch loads, so this must
run before torch is imported (the CLI does; Python users set it themselves, see README "OpenMP's wait
policy").
"""

from __future__ import annotations

import os

VARIABLE = "OMP_WAIT_POLICY"


def choose_wait_policy(environ: dict | None = None, compiled_kernels: bool = False, load: float | None = None,
                       cpus: int | None = None) -> str | None:
    """Set `OMP_WAIT_POLICY=PASSIVE` in `environ` (default os.environ) when it is unset and either
    `compiled_kernels` (loopynet's C kernels will run) or the 1-minute load average (`load`, default
    os.getloadavg) is at least the number of CPUs (`cpus`, default os.cpu_count). Returns the value now
    set, None when unset. Where the load average is unavailable (Windows) only `compiled_kernels` counts."""
    environ = os.environ if environ is None else environ
    if VARIABLE in environ:
        return environ[VARIABLE]
    if not compiled_kernels and load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    if compiled_kernels or load >= (cpus or os.cpu_count() or 1):
        environ[VARIABLE] = "PASSIVE"
    return environ.get(VARIABLE)
