"""The `loopynet import keras` subcommand: its arguments and its call into `keras_import` (no work here)."""

from __future__ import annotations

import argparse
import sys

from loopynet.config import BOOK_DATA, VECTOR_NORMS, DataConfig


def register(sub) -> None:
    """Add `import keras` to the `loopynet` subparsers `sub`."""
    imp = sub.add_parser("import", help="import a model from another framework into a model folder")
    fmt = imp.add_subparsers(dest="import_format", required=True)
    k = fmt.add_parser("keras", help="a Keras classifier: model JSON + weights .h5 (Keras 2, the book's pair, or "
                       "Keras 3 .weights.h5), a full-model .h5, or a .keras archive")
    k.add_argument("model", help="model JSON, full-model .h5 or .keras")
    k.add_argument("weights", nargs="?", default=None, help="the weights file, with a model JSON")
    k.add_argument("--vectors", required=True, help="the word vectors the Keras model was fed (word2vec/GloVe)")
    k.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    k.add_argument("--maxlen", type=int, default=None,
                   help="padded length, only for a model whose input length is open (default: the model's)")
    k.add_argument("--class-names", default="neg,pos",
                   help="the negative and positive class names, comma-separated (default neg,pos: IMDB)")
    k.add_argument("--oov", choices=["drop", "unk"], default="drop", help="tokens without a vector (default drop)")
    on_off = argparse.BooleanOptionalAction
    for flag, what in (("strip-html", "replace <br /> with a space"), ("split-periods", "split a trailing period off"),
                       ("map-quotes", "map Treebank quotes to \"")):
        k.add_argument(f"--{flag}", action=on_off, default=BOOK_DATA[flag.replace("-", "_")],
                       help=f"{what} before tokenising (default: off, the book's pipeline)")
    k.add_argument("--vector-norm", choices=VECTOR_NORMS, default=BOOK_DATA["vector_norm"],
                   help="vector post-processing over the whole file (default none: the book's)")


def cmd_import(args) -> int:
    from loopynet.interop.keras_import import import_keras

    names = [n.strip() for n in args.class_names.split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError(f"--class-names needs two names separated by a comma, got {args.class_names!r}")
    data_config = DataConfig(**{**BOOK_DATA, "strip_html": args.strip_html, "split_periods": args.split_periods,
                                "map_quotes": args.map_quotes, "vector_norm": args.vector_norm}, oov=args.oov,
                             maxlen=args.maxlen or DataConfig.maxlen)
    out = import_keras(args.model, args.weights, args.vectors, args.out, data_config, tuple(names), args.maxlen,
                       log=lambda line: print(line, file=sys.stderr))
    print(f"saved {out}")
    return 0
