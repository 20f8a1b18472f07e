"""Integrated Gradients of the logit with respect to the per-position input vectors (Captum).

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017: the attribution of input
feature i is (x_i - x'_i) * the mean of dF/dx_i along the straight path from the baseline x' to x,
approximated with `steps` points (Captum's default Gauss-Legendre rule). Baseline: the zero vector at every
position, which is the padding vector, so for the book's Flatten model the baseline is the empty review;
for last/mean/max heads the document keeps its length (the positions stay real steps, with zero vectors).
A token's attribution is the sum over its E vector dims. Completeness (the paper's axiom): the attributions
sum to F(x) - F(x'). `attribute` checks it for every document: where the numerical error exceeds 1% of
|F(x) - F(x')| + 1e-3 it recomputes that document with twice the steps, up to 8 times the given count, and
stops with CompletenessError if it still does not hold. Smooth networks (Flatten, last and mean heads) meet
the tolerance at 50 steps; a max-pooling head is only piecewise smooth along the path (its argmax over time
switches), which quadrature integrates more slowly, so some documents need 100-400 steps (tests).

F is the recurrent part's share of the logit (times the ensemble's mix weight a; see network.Network).
Gradients flow through the compiled C kernels as through the PyTorch path (their backward returns the
input gradients); `LOOPYNET_KERNEL=torch` selects the latter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from loopynet.errors import InputError

if TYPE_CHECKING:  # the CLI imports this module's constants before parsing: torch only when attributing
    import torch

    from loopynet.explain.network import Network

DEFAULT_STEPS = 50  # Captum's default n_steps
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 0.01, 1e-3
REFINEMENTS = 3  # doublings of the step count for a document outside the tolerance: 50 -> 100 -> 200 -> 400


class CompletenessError(InputError):
    """IG attributions do not sum to F(x) - F(baseline) within tolerance: raise the step count."""


@dataclass
class Attributions:
    """per_position (B, T) float64 (zero after each row's length); logit (B,) F(x); baseline (B,) F(x');
    delta (B,) sum(per_position) - (logit - baseline), Captum's convergence delta; steps (B,) used per row."""

    per_position: np.ndarray
    logit: np.ndarray
    baseline: np.ndarray
    delta: np.ndarray
    steps: np.ndarray

    def failing(self) -> np.ndarray:
        """Indices of the rows whose |delta| exceeds 1% of |F(x) - F(x')| + 1e-3."""
        allowed = RELATIVE_TOLERANCE * np.abs(self.logit - self.baseline) + ABSOLUTE_TOLERANCE
        return np.flatnonzero(np.abs(self.delta) > allowed)


def attribute(network: Network, ids: torch.Tensor, lengths: torch.Tensor, steps: int = DEFAULT_STEPS,
              internal_batch_size: int = 64) -> Attributions:
    """`integrated_gradients` with completeness checked per row; a row outside the tolerance is recomputed
    with twice the steps, at most `REFINEMENTS` times (see the module doc).

    Raises:
        CompletenessError: a row is still outside the tolerance at 2**REFINEMENTS * steps.
        ValueError: steps < 1.
    """
    result = integrated_gradients(network, ids, lengths, steps, internal_batch_size)
    for _ in range(REFINEMENTS):
        bad = result.failing()
        if not len(bad):
            return result
        steps *= 2
        again = integrated_gradients(network, ids[bad], lengths[bad], steps, internal_batch_size)
        for name in ("per_position", "logit", "baseline", "delta", "steps"):
            getattr(result, name)[bad] = getattr(again, name)
    check_completeness(result)
    return result


def integrated_gradients(network: Network, ids: torch.Tensor, lengths: torch.Tensor, steps: int = DEFAULT_STEPS,
                         internal_batch_size: int = 64) -> Attributions:
    """IG of the recurrent part's logit share for a batch ids (B, T) (from `network.rnn_batch`).

    Raises:
        ValueError: steps < 1.
    """
    import torch
    from captum.attr import IntegratedGradients

    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    x = network.rnn.embed(ids).detach()  # (B, T, E)
    baseline = torch.zeros_like(x)
    ig = IntegratedGradients(network.rnn_logit_of_vectors)
    attributions, delta = ig.attribute(x, baselines=baseline, additional_forward_args=(lengths,), n_steps=steps,
                                       internal_batch_size=max(internal_batch_size, len(x)),
                                       return_convergence_delta=True)  # (B, T, E), (B,)
    with torch.no_grad():
        logit = network.rnn_logit_of_vectors(x, lengths).double().cpu().numpy()
        zero = network.rnn_logit_of_vectors(baseline, lengths).double().cpu().numpy()
    return Attributions(attributions.sum(2).double().cpu().numpy(), logit, zero, delta.double().cpu().numpy(),
                        np.full(len(x), steps))


def check_completeness(result: Attributions) -> None:
    """Raise CompletenessError when |delta| > 1% of |F(x) - F(x')| + 1e-3 for any row."""
    bad = result.failing()
    if len(bad):
        i = bad[0]
        raise CompletenessError(f"Integrated Gradients with {result.steps[i]} steps: attributions sum to "
                                f"{result.per_position[i].sum():.5f} but F(x) - F(baseline) = "
                                f"{result.logit[i] - result.baseline[i]:.5f}; use more steps (--steps)")
