"""Per-phase roofline of one training step of the book's network (NLP in Action 8.1.5).

FLOPs are counted analytically (a multiply-add is 2 FLOPs) for what each phase must compute, not for
what an implementation happens to compute (padding columns, copies and the optimizer's elementwise work
count 0); the ceiling is the machine's sgemm rate measured in the same run (`torch.mm` of two square
float32 matrices, MKL or OpenBLAS through torch).

Symbols: T time steps (maxlen), B batch, E embedding dims, H units, U distinct token ids of a batch
(the projection runs once per distinct id, as loopynet's `CompiledBookNetwork` does).
"""

from __future__ import annotations

import statistics
import time


def phase_flops(T: int, B: int, E: int, H: int, U: float) -> dict[str, float]:
    """FLOPs of each phase of `bench_train.breakdown`, by the breakdown's phase names."""
    return {
        "embedding+projection": 2 * U * E * H,                    # table[u] @ kernel for the distinct ids
        "recurrence fwd": 2 * T * B * H * H + 2 * T * B * H,      # h[t-1] @ W_hh every step; the head's sums
        "head fwd (dropout+dense) + loss": 0.0,                   # the loss (the head is summed in the recurrence)
        "head bwd": 0.0,                                          # the loss's backward (dh, dw: in the BPTT)
        "recurrence bwd (+dW_hh)": 4 * T * B * H * H + 4 * T * B * H,  # da[t] @ W_hh^T, sum h[t-1]^T da[t], dh, dw
        "projection bwd (scatter + dW_xh)": 2 * U * E * H + T * B * H,  # table[u]^T d, and the scatter's sums
        "optimizer step": 0.0,
    }


def sgemm_peak(threads: int, n: int = 1024, repeats: int = 7) -> dict:
    """The sgemm rate in GFLOP/s: `torch.mm` of two (n, n) float32 matrices on `threads` threads, best of
    `repeats` (median reported too). One thread is timed in thread CPU time (robust to other processes on
    the machine), more in wall time."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    clock = time.thread_time if threads == 1 else time.perf_counter
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        start = clock()
        for _ in range(4):
            torch.mm(a, b)
        rates.append(4 * 2 * n**3 / (clock() - start) / 1e9)
    torch.set_num_threads(before)
    return {"threads": threads, "n": n, "best_gflops": max(rates), "median_gflops": statistics.median(rates),
            "clock": "thread CPU time" if threads == 1 else "wall time"}


def roofline(breakdown_ms: dict, flops: dict[str, float], peak_gflops: float) -> dict[str, dict]:
    """{phase: {ms, mflop, gflops, share_of_peak}} for the phases that have a time and a FLOP count."""
    rows = {}
    for phase, mflop in ((p, f / 1e6) for p, f in flops.items()):
        ms = breakdown_ms.get(phase)
        if isinstance(ms, float):
            gflops = mflop / ms if ms > 0 else float("nan")
            rows[phase] = {"ms": ms, "mflop": mflop, "gflops": gflops, "share_of_peak": gflops / peak_gflops}
    total_ms = sum(r["ms"] for r in rows.values())
    total_mflop = sum(r["mflop"] for r in rows.values())
    rows["step"] = {"ms": total_ms, "mflop": total_mflop, "gflops": total_mflop / total_ms,
                    "share_of_peak": total_mflop / total_ms / peak_gflops,
                    "ms_at_peak": total_mflop / peak_gflops}
    return rows


def format_roofline(rows: dict[str, dict], peak: dict) -> str:
    lines = [f"roofline (sgemm peak {peak['best_gflops']:.0f} GFLOP/s on {peak['threads']} thread(s), torch.mm "
             f"{peak['n']}x{peak['n']}, {peak['clock']}):",
             f"  {'phase':<36}{'MFLOP':>9}{'ms':>9}{'GFLOP/s':>9}{'of peak':>9}"]
    for phase, r in rows.items():
        lines.append(f"  {phase:<36}{r['mflop']:>9.1f}{r['ms']:>9.3f}{r['gflops']:>9.1f}{r['share_of_peak']:>9.0%}")
    step = rows["step"]
    lines.append(f"  at the sgemm peak the step's FLOPs would take {step['ms_at_peak']:.3f} ms")
    return "\n".join(lines)
