"""`loopynet import keras`: its own arguments (the pipeline options come from the config table, added by
the CLI) and its call into `keras_import` (no work here)."""

from __future__ import annotations

import argparse
import sys

from loopynet.config import DataConfig
from loopynet.errors import InputError


def add_import_arguments(k: argparse.ArgumentParser) -> None:
    """The files and options of `loopynet import keras` that are not DataConfig fields."""
    k.add_argument("model", help="model JSON, full-model .h5 or .keras")
    k.add_argument("weights", nargs="?", default=None, help="the weights file, with a model JSON")
    k.add_argument("--vectors", required=True, help="the word vectors the Keras model was fed (word2vec/GloVe)")
    k.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    k.add_argument("--maxlen", type=int, default=None,
                   help="padded length in tokens, only for a model whose input length is open (default: the model's)")
    k.add_argument("--class-names", default="neg,pos",
                   help="the negative and positive class names, comma-separated (default: neg,pos, IMDB's)")


def run_import(args: argparse.Namespace, data_config: DataConfig) -> int:
    """Import the Keras files of `args` with the pipeline options of `data_config`; print the folder."""
    from loopynet.interop.keras_import import import_keras

    names = [n.strip() for n in args.class_names.split(",")]
    if len(names) != 2 or not all(names):
        raise InputError(f"--class-names needs two names separated by a comma, got {args.class_names!r}")
    out = import_keras(args.model, args.weights, args.vectors, args.out, data_config, tuple(names), args.maxlen,
                       log=lambda line: print(line, file=sys.stderr))
    print(f"saved {out}")
    return 0
