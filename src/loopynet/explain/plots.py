"""matplotlib pictures of explanations, maps and corpus-level evidence (PNG; the page embeds them).

Colours: blue = evidence for the positive class (class_names[1]), red = for the negative (the `RdBu`
colormap, centred on 0); grey = not read (out of vocabulary, or cut by maxlen).
"""

from __future__ import annotations

import io
import os

import numpy as np

CMAP = "RdBu"
WRAP = 140  # characters per line of the token panel (monospaced, 9 pt on a 12-inch figure)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def token_colour(value: float, scale: float) -> tuple[float, float, float]:
    """RGB of an attribution on the RdBu scale, |value| = scale at the ends (scale > 0)."""
    import matplotlib

    return matplotlib.colormaps[CMAP](0.5 + 0.5 * float(np.clip(value / scale, -1, 1)))[:3]


def scale_of(values: np.ndarray) -> float:
    """The colour scale of one text: its largest |attribution| (1 when there is none)."""
    return float(np.abs(values).max()) if len(values) and np.abs(values).max() > 0 else 1.0


def _token_lines(explanation: dict) -> list[list[dict]]:
    lines, line, width = [], [], 0
    for token in explanation["tokens"]:
        if line and width + len(token["token"]) + 1 > WRAP:
            lines.append(line)
            line, width = [], 0
        line.append(token)
        width += len(token["token"]) + 1
    return lines + ([line] if line else [])


def explanation_figure(explanation: dict, title: str = "", with_tokens: bool = True):
    """A figure: the tokens coloured by attribution (unless `with_tokens` is False: the page shows them as
    text), P(prefix) over the tokens, the hidden-state heatmap (units x time) and the norm of h_t over time."""
    plt = _pyplot()
    lines = _token_lines(explanation) if with_tokens else []
    token_height = 0.3 + 0.22 * len(lines) if with_tokens else 0.0
    fig = plt.figure(figsize=(12, 5.6 + token_height), layout="constrained")
    grid = fig.add_gridspec(4 if with_tokens else 3, 1, height_ratios=([token_height] if with_tokens else []) + [1.3, 2.2, 1.2])
    if with_tokens:
        _draw_tokens(fig.add_subplot(grid[0]), explanation, lines)
    ax = fig.add_subplot(grid[-3])
    ax.plot(np.arange(1, len(explanation["prefix_probability"]) + 1), explanation["prefix_probability"], color="k")
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set(ylim=(0, 1), xlabel="tokens read (k)", ylabel="P(first k)", title="probability of every prefix")
    _draw_hidden(fig.add_subplot(grid[-2]), fig.add_subplot(grid[-1]), explanation)
    if title:
        fig.suptitle(title)
    return fig


def _draw_tokens(ax, explanation: dict, lines: list[list[dict]]) -> None:
    scale = scale_of(explanation["attribution"])
    ax.set_axis_off()
    ax.set(xlim=(0, WRAP), ylim=(len(lines), -0.2))
    for row, line in enumerate(lines):
        x = 0
        for token in line:
            read = token["position"] is not None and token["status"] == "in"
            colour = token_colour(explanation["attribution"][token["position"]], scale) if read else (0.85,) * 3
            ax.text(x, row + 0.5, token["token"], family="monospace", fontsize=9, va="center",
                    color="black" if read else "dimgrey", style="normal" if read else "italic",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.0})
            x += len(token["token"]) + 1


def _draw_hidden(heat_ax, norm_ax, explanation: dict) -> None:
    hidden = explanation["hidden"]  # (L', D)
    if len(hidden):
        limit = max(float(np.abs(hidden).max()), 1e-12)
        image = heat_ax.imshow(hidden.T, aspect="auto", cmap="PuOr", vmin=-limit, vmax=limit, interpolation="nearest")
        heat_ax.figure.colorbar(image, ax=heat_ax, pad=0.01)
        if explanation["directions"] == 2:
            heat_ax.axhline(hidden.shape[1] / 2 - 0.5, color="k", lw=1)
    heat_ax.set(xlabel="time step t", ylabel="unit" + (" (forward | backward)" if explanation["directions"] == 2 else ""),
                title="hidden state h_t of the top recurrent layer")
    norm = explanation["hidden_norm"]
    units = hidden.shape[1] if len(hidden) else 0
    if explanation["directions"] == 2 and len(hidden):
        norm_ax.plot(np.linalg.norm(hidden[:, : units // 2], axis=1), label="forward")
        norm_ax.plot(np.linalg.norm(hidden[:, units // 2 :], axis=1), label="backward")
        norm_ax.legend(fontsize=7)
    else:
        norm_ax.plot(norm, color="k")
    norm_ax.set(xlabel="time step t", ylabel="‖h_t‖", xlim=heat_ax.get_xlim())


def map_figure(points: np.ndarray, labels: list[str], predictions: list[str], class_names: list[str], title: str):
    """Scatter of 2-D points coloured by true label; misclassified documents drawn as black-edged crosses."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    for name, colour in zip(class_names, ("tab:red", "tab:blue")):
        right = (labels == name) & (predictions == labels)
        wrong = (labels == name) & (predictions != labels)
        ax.scatter(*points[right].T, s=6, color=colour, alpha=0.5, lw=0, label=f"{name} ({right.sum():,})")
        ax.scatter(*points[wrong].T, s=14, color=colour, marker="x", lw=0.8, label=f"{name}, misclassified ({wrong.sum():,})")
    ax.legend(fontsize=8, markerscale=2)
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    fig.tight_layout()
    return fig


def corpus_figure(top: dict, title: str):
    """Horizontal bars of the mean attribution of the strongest positive and negative words."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.25 * max(len(top["positive"]), len(top["negative"]), 4) + 1.2))
    for ax, side, colour in ((axes[0], "negative", "tab:red"), (axes[1], "positive", "tab:blue")):
        rows = top[side][::-1]
        ax.barh(np.arange(len(rows)), [r["mean"] for r in rows], color=colour)
        ax.set_yticks(np.arange(len(rows)), [f"{r['word']} ({r['count']})" for r in rows], fontsize=7)
        ax.set(title=f"strongest {side} evidence", xlabel="mean attribution (logit)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save(fig, path: str | os.PathLike) -> None:
    """Write `fig` as PNG atomically and close it."""
    from loopynet.io.atomic import atomic_file

    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=110)
    _pyplot().close(fig)


def png_bytes(fig) -> bytes:
    """`fig` as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return buffer.getvalue()
