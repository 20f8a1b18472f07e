"""Learning curves of a model folder: loss and accuracy per epoch (training and validation), as a PNG.

    python -m loopynet.inspect.curves runs/recipes/imdb-rnn docs/imdb-rnn-learning-curve.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from loopynet.io.artifact import read_records


def plot_history(history: list[dict], path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[metric] for h in history], "o-", label=f"training {metric}")
        if history and f"val_{metric}" in history[0]:
            ax.plot(epochs, [h[f"val_{metric}"] for h in history], "s-", label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    folder, out = (argv or sys.argv[1:])[:2]
    history, _ = read_records(folder)
    plot_history(history, out, f"{Path(folder).name}: loss and accuracy per epoch")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
