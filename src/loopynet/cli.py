"""Command line: `loopynet train | evaluate | predict | summary | tune | data fetch`. Argument handling only."""

from __future__ import annotations

import argparse
import json
import sys

from loopynet.config import DataConfig, ModelConfig, TrainConfig

EXIT_ERROR = 2


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="aclImdb root folder, split folder, or .tar.gz of either")
    p.add_argument("--encoding-errors", choices=["strict", "replace"], default=None,
                   help="non-UTF-8 files: stop (strict, default) or replace bad bytes")
    p.add_argument("--limit", type=int, default=None, help="use only N documents (a quick slice)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopynet", description="Recurrent neural networks over text.")
    parser.add_argument("--version", action="version", version=f"loopynet {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    d, m, t = DataConfig(), ModelConfig(), TrainConfig()
    train = sub.add_parser("train", help="train the book's SimpleRNN classifier and save a model folder")
    _add_data_args(train)
    train.add_argument("--vectors", required=True, help="word vectors: word2vec .bin/.bin.gz or text/GloVe")
    train.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    train.add_argument("--split", default="train", help="split folder inside a root (default: train)")
    train.add_argument("--maxlen", type=int, default=d.maxlen, help="tokens per document (default 400)")
    train.add_argument("--val-split", type=float, default=d.val_split, help="validation fraction (default 0.2)")
    train.add_argument("--oov", choices=["drop", "unk"], default=d.oov, help="tokens without a vector (default: drop, as the book)")
    train.add_argument("--strip-html", action="store_true", help="replace <br /> with a space before tokenising")
    train.add_argument("--split-periods", action="store_true", help="split a trailing period off words (movie. -> movie .)")
    train.add_argument("--map-quotes", action="store_true", help="map Treebank quote tokens `` and '' to \"")
    train.add_argument("--vector-norm", choices=["none", "unit"], default=d.vector_norm,
                       help="scale word vectors to unit L2 norm (default: none, as the book)")
    train.add_argument("--units", type=int, default=m.units, help="recurrent units (default 50)")
    train.add_argument("--dropout", type=float, default=m.dropout, help="dropout after the RNN (default 0.2)")
    train.add_argument("--embedding-dims", type=int, default=None, help="must match the vectors (default: from the file)")
    train.add_argument("--batch-size", type=int, default=t.batch_size, help="default 32")
    train.add_argument("--epochs", type=int, default=t.epochs, help="default 2")
    train.add_argument("--lr", type=float, default=t.lr, help="RMSprop learning rate (default 1e-3)")
    train.add_argument("--optimizer", choices=["rmsprop", "adam"], default=t.optimizer, help="default: rmsprop (book)")
    train.add_argument("--clip-norm", type=float, default=None, help="clip the gradient's global norm (default: off)")
    train.add_argument("--patience", type=int, default=None,
                       help="early stopping: epochs without a lower val_loss (default: off); best weights restored")
    train.add_argument("--checkpoint-dir", default=None, help="save the training state here after every epoch "
                       "(default: OUT.checkpoint)")
    train.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    train.add_argument("--seed", type=int, default=t.seed, help="shuffle, split, init and dropout seed (default 0)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    ev = sub.add_parser("evaluate", help="metrics of a model folder on a labelled split (default: test)")
    ev.add_argument("model", help="model folder")
    _add_data_args(ev)
    ev.add_argument("--split", default="test", help="default: test")
    ev.add_argument("--threshold", type=float, default=0.5)
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    pr = sub.add_parser("predict", help="P(positive) and label for texts (arguments, --file, or stdin)")
    pr.add_argument("model", help="model folder")
    pr.add_argument("texts", nargs="*", help="texts to classify")
    pr.add_argument("--file", help="one text per line ('-' for stdin)")
    pr.add_argument("--threshold", type=float, default=0.5)
    pr.add_argument("--json", action="store_true", help="print a JSON list of {text, probability, label}")

    sm = sub.add_parser("summary", help="the Keras-style layer table of a model folder or of settings")
    sm.add_argument("model", nargs="?", help="model folder (else use --units/--maxlen/--embedding-dims)")
    sm.add_argument("--units", type=int, default=m.units)
    sm.add_argument("--maxlen", type=int, default=m.maxlen)
    sm.add_argument("--embedding-dims", type=int, default=m.embedding_dims)

    tune = sub.add_parser("tune", help="search hyperparameters with Optuna (random or TPE), resumable and parallel")
    _add_data_args(tune)
    tune.add_argument("--vectors", required=True, help="word vectors, as for train")
    tune.add_argument("--out", required=True, help="results folder: best.json, trials.csv, plots (and study.db)")
    tune.add_argument("--space", help="search space TOML (default: the book's 8.4 list, loopynet/tune/default_space.toml)")
    tune.add_argument("--sampler", choices=["random", "tpe"], default="tpe", help="default: tpe")
    tune.add_argument("--pruner", choices=["median", "halving", "none"], default="median",
                      help="stop poor trials after an epoch (default: median)")
    tune.add_argument("--trials", type=int, default=20, help="finished trials wanted in the study, earlier runs included (default 20)")
    tune.add_argument("--timeout", type=float, default=None, help="seconds after which workers start no new trial")
    tune.add_argument("--study", default="loopynet", help="study name in the storage (default: loopynet)")
    tune.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///OUT/study.db), e.g. postgresql+psycopg2://...")
    tune.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default 1)")
    tune.add_argument("--seed", type=int, default=t.seed, help="data shuffle, split, init and sampler seed (default 0)")
    tune.add_argument("--heartbeat", type=int, default=30,
                      help="seconds between worker heartbeats; a trial silent for twice that is failed and retried (default 30)")
    tune.add_argument("--save-best", action="store_true", help="retrain the best configuration into OUT/best-model")
    tune.add_argument("--quiet", action="store_true", help="only warnings from Optuna")

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="download a dataset archive into $LOOPYNET_HOME/data")
    fetch.add_argument("name", help="dataset name (imdb)")
    fetch.add_argument("--url", help="mirror URL of the same archive")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from loopynet.errors import USER_ERRORS  # heavy imports only after parsing (fast --help)

    try:
        return COMMANDS[args.command](args) or 0
    except USER_ERRORS as err:
        print(f"loopynet {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


def cmd_train(args) -> int:
    from loopynet.classifier import Classifier

    data_config = DataConfig(maxlen=args.maxlen, val_split=args.val_split, oov=args.oov,
                             encoding_errors=args.encoding_errors or "strict", limit=args.limit,
                             strip_html=args.strip_html, split_periods=args.split_periods, map_quotes=args.map_quotes,
                             vector_norm=args.vector_norm)
    model_config = ModelConfig(units=args.units, dropout=args.dropout, maxlen=args.maxlen,
                               embedding_dims=args.embedding_dims or ModelConfig.embedding_dims)
    train_config = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, lr=args.lr, seed=args.seed,
                               optimizer=args.optimizer, clip_norm=args.clip_norm, patience=args.patience)
    checkpoints = args.checkpoint_dir or f"{args.out.rstrip('/')}.checkpoint"
    clf = Classifier.train(args.data, args.vectors, data_config, model_config, train_config, split=args.split,
                           progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                           checkpoint_dir=checkpoints, resume=args.resume)
    out = clf.save(args.out)
    print(f"saved {out}")
    return 0


def cmd_evaluate(args) -> int:
    from loopynet.classifier import Classifier

    metrics = Classifier.load(args.model).evaluate(args.data, args.split, args.threshold, args.encoding_errors, args.limit)
    if args.json:
        print(json.dumps(metrics))
        return 0
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    print(f"{metrics['split']} split, {metrics['support']:,} documents")
    for name in ("accuracy", "precision", "recall", "f1", "loss"):
        print(f"{name:>10}: {metrics[name]:.4f}")
    print(f"confusion matrix (rows: true neg/pos, columns: predicted neg/pos):\n  [[{tn:6d} {fp:6d}]\n   [{fn:6d} {tp:6d}]]")
    return 0


def cmd_predict(args) -> int:
    from loopynet.classifier import Classifier

    texts = list(args.texts)
    if args.file:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with stream:
            texts += [line.rstrip("\n") for line in stream]
    elif not texts:
        texts = [line.rstrip("\n") for line in sys.stdin]
    results = Classifier.load(args.model).predict(texts, args.threshold)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            print(f"{r['label']}\t{r['probability']:.4f}\t{r['text'][:80]}")
    return 0


def cmd_summary(args) -> int:
    from loopynet.models.summary import summary

    if args.model:
        from loopynet.classifier import Classifier

        clf = Classifier.load(args.model)
        print(summary(clf.model.config, len(clf.vocab)))
    else:
        print(summary(ModelConfig(units=args.units, maxlen=args.maxlen, embedding_dims=args.embedding_dims)))
    return 0


def cmd_tune(args) -> int:
    try:
        from loopynet.tune.search import TuneError, TuneSettings, run_search
    except ModuleNotFoundError as err:
        print(f"loopynet tune: error: {err.name} is missing; install the extra: pip install 'loopynet[tune]'", file=sys.stderr)
        return EXIT_ERROR
    from loopynet.tune.space import load_space

    settings = TuneSettings(args.data, args.vectors, args.out, load_space(args.space), sampler=args.sampler,
                            pruner=args.pruner, trials=args.trials, timeout=args.timeout, study=args.study,
                            storage=args.storage, workers=args.workers, limit=args.limit, seed=args.seed,
                            encoding_errors=args.encoding_errors or "strict", heartbeat=args.heartbeat,
                            save_best=args.save_best, quiet=args.quiet)
    try:
        best = run_search(settings, log=lambda line: print(line, file=sys.stderr))
    except TuneError as err:
        print(f"loopynet tune: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(f"best trial {best['number']}: val_accuracy {best['value']:.4f} {json.dumps(best['params'])}")
    print(f"trials: {best['trials']}; results in {args.out}")
    print(f"reproduce: {best['command']}")
    for note in best["notes"]:
        print(f"note: {note}")
    if best["not_in_command"]:
        print(f"note: loopynet train has no flag for {best['not_in_command']}: the command trains their defaults")
    return 0


def cmd_data(args) -> int:
    from loopynet.data.fetch import fetch

    print(fetch(args.name, url=args.url))
    return 0


def _version() -> str:
    from loopynet import __version__

    return __version__


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary, "tune": cmd_tune,
            "data": cmd_data}

if __name__ == "__main__":
    sys.exit(main())
