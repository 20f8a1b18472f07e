"""Learning curves of a model folder: loss and accuracy per epoch (training and validation), as a PNG.

    python -m loopynet.inspect.curves runs/recipes/imdb-rnn docs/imdb-rnn-learning-curve.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from loopynet.io.artifact import ArtifactError, read_records
from loopynet.io.atomic import atomic_file


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
    with atomic_file(path) as f:  # PNG whatever the name's suffix
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m loopynet.inspect.curves MODEL_FOLDER OUT.png`; exit 2 with one line on bad input."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m loopynet.inspect.curves", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model folder (reads its history.json)")
    parser.add_argument("out", help="the PNG file to write")
    args = parser.parse_args(argv)
    try:
        history, _ = read_records(args.model)
        path = plot_history(history, args.out, f"{Path(args.model).name}: loss and accuracy per epoch")
    except (ArtifactError, OSError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
