"""How OpenMP's idle threads wait, chosen per run by the machine's load (issue 17, measured).

PyTorch's CPU ops run on an OpenMP (libgomp) thread pool whose idle threads spin before they sleep.
On a machine with cores to spare, spinning is what makes torch's many small parallel regions fast
(the imdb-rnn network, BiLSTM(64), trained 1.74x faster with spinning than with
`OMP_WAIT_POLICY=PASSIVE` on the idle 2-core machine); on an oversubscribed machine the spinning
threads steal the CPU from the threads doing the work (2-thread training steps up to ~10x slower).
So the CLI leaves OpenMP's default alone unless the machine is already busier than its cores, and
never overrides what the user set. loopynet's own C kernels use pthreads that sleep while they wait.
"""

from __future__ import annotations

import os

VARIABLE = "OMP_WAIT_POLICY"


def choose_wait_policy(environ: dict | None = None, load: float | None = None, cpus: int | None = None) -> str | None:
    """Set `OMP_WAIT_POLICY=PASSIVE` in `environ` (default os.environ) when it is unset and the 1-minute load
    average (`load`, default os.getloadavg) is at least the number of CPUs (`cpus`, default os.cpu_count);
    returns the value now set, None when unset. Call before torch is imported: libgomp reads the variable
    once, when it loads. Where the load average is unavailable (Windows), nothing is set."""
    environ = os.environ if environ is None else environ
    if VARIABLE in environ:
        return environ[VARIABLE]
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    if load >= (cpus or os.cpu_count() or 1):
        environ[VARIABLE] = "PASSIVE"
    return environ.get(VARIABLE)
