"""A `model.summary()` table in the layout of Keras 2, as printed in NLP in Action 8.2."""

from __future__ import annotations

from loopynet.config import ModelConfig

LINE = 65
WIDTHS = (29, 26, 10)  # Keras 2 print_summary positions [.45, .85, 1.] x 65 characters


def layer_rows(config: ModelConfig) -> list[tuple[str, str, int]]:
    """(name (type), output shape, trainable params) per layer of the book's network."""
    E, H, T = config.embedding_dims, config.units, config.maxlen
    return [
        ("simple_rnn_1 (SimpleRNN)", f"(None, {T}, {H})", E * H + H * H + H),
        ("dropout_1 (Dropout)", f"(None, {T}, {H})", 0),
        ("flatten_1 (Flatten)", f"(None, {T * H})", 0),
        ("dense_1 (Dense)", "(None, 1)", T * H + 1),
    ]


def _row(cells: tuple) -> str:
    return "".join(str(cell).ljust(width) for cell, width in zip(cells, WIDTHS)).rstrip()


def summary(config: ModelConfig, vocabulary_size: int | None = None) -> str:
    """The Keras-style table: layers, output shapes, parameter counts (37,551 for the book's model).

    The frozen word-vector lookup replaces the book's pre-vectorised input, so it is noted below the
    table rather than listed as a layer.
    """
    rows = layer_rows(config)
    total = sum(r[2] for r in rows)
    lines = ["_" * LINE, _row(("Layer (type)", "Output Shape", "Param #")), "=" * LINE]
    for i, row in enumerate(rows):
        lines.append(_row(row))
        lines.append("=" * LINE if i == len(rows) - 1 else "_" * LINE)
    lines += [f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0", "_" * LINE]
    source = f"{vocabulary_size:,} words x {config.embedding_dims}" if vocabulary_size else f"{config.embedding_dims}-d vectors"
    lines.append(f"Input: (None, {config.maxlen}) token ids -> frozen word vectors ({source}), not trained")
    return "\n".join(lines)
