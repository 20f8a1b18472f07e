"""Command line: `loopynet train | evaluate | predict | summary | tune | data fetch`. Argument handling only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from loopynet.config import BOOK_DATA, VECTOR_NORMS, WORD_WEIGHTS, DataConfig, ModelConfig, TrainConfig
from loopynet.data.conll import TAG_SCHEMES

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention
MAX_THREADS = 256  # torch crashes (segfault) when asked for ~100,000


class OneLineErrors(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like loopynet's other errors (exit 2); subcommands
    inherit the class (add_subparsers uses the parent's type)."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _probability(text: str) -> float:
    """argparse type of --threshold: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _count(minimum: int):
    """argparse type: an int >= `minimum` (e.g. --limit 1, --seed 0)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value
    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in "invalid ... value" messages
    return parse


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="aclImdb root folder, split folder, or .tar.gz of either")
    p.add_argument("--encoding-errors", choices=["strict", "replace"], default=None,
                   help="non-UTF-8 files: stop (strict, default) or replace bad bytes")
    p.add_argument("--limit", type=_count(1), default=None, help="use only N documents (a quick slice)")


def _add_schedule_args(p: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    p.add_argument("--lr-decay", type=float, default=defaults.lr_decay,
                   help=f"epoch e uses lr / (1 + LR_DECAY * (e - 1)) (Ma & Hovy 2016; default {defaults.lr_decay:g}, "
                        "0 = constant)")
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                   help=f"validate and keep a moving average of the weights (default {defaults.ema_decay:g}; 0 = off)")


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The argument parser; `train_defaults` (a preset's values) replace `loopynet train`'s defaults."""
    parser = OneLineErrors(prog="loopynet", description="Recurrent neural networks over text.")
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
    on_off = argparse.BooleanOptionalAction
    train.add_argument("--strip-html", action=on_off, default=d.strip_html,
                       help="replace <br /> with a space before tokenising (default: on; the book: off)")
    train.add_argument("--split-periods", action=on_off, default=d.split_periods,
                       help="split a trailing period off words, movie. -> movie . (default: on; the book: off)")
    train.add_argument("--map-quotes", action=on_off, default=d.map_quotes,
                       help="map Treebank quote tokens `` and '' to \" (default: on; the book: off)")
    train.add_argument("--vector-norm", choices=VECTOR_NORMS, default=d.vector_norm,
                       help="abtt (default): all-but-the-top post-processing (Mu & Viswanath 2018), then L2 norm 1; "
                            "unit: L2 norm 1; none: as stored (the book)")
    train.add_argument("--word-weights", choices=WORD_WEIGHTS, default=d.word_weights,
                       help="sif (default): scale each word vector by a/(a + its corpus frequency) (Arora et al. 2017); "
                            "none: the book")
    train.add_argument("--sif-a", type=float, default=d.sif_a, help="a of --word-weights sif (default 1e-3)")
    train.add_argument("--units", type=int, default=m.units, help="recurrent units (default 50)")
    train.add_argument("--dropout", type=float, default=m.dropout, help="dropout after the RNN (default 0.2)")
    train.add_argument("--embedding-dims", type=int, default=None, help="must match the vectors (default: from the file)")
    train.add_argument("--batch-size", type=int, default=t.batch_size, help="default 32")
    train.add_argument("--epochs", type=int, default=t.epochs, help="default 2")
    train.add_argument("--lr", type=float, default=t.lr, help="learning rate of RMSprop or Adam (default 1e-3)")
    train.add_argument("--rho", type=float, default=t.rho, help="RMSprop's decay of the squared-gradient average (default 0.9)")
    train.add_argument("--epsilon", type=float, default=t.epsilon, help="RMSprop/Adam epsilon (default 1e-7, Keras')")
    train.add_argument("--optimizer", choices=["rmsprop", "adam"], default=t.optimizer, help="default: rmsprop (book)")
    _add_schedule_args(train, t)
    train.add_argument("--clip-norm", type=float, default=None, help="clip the gradient's global norm (default: off)")
    train.add_argument("--patience", type=int, default=None,
                       help="early stopping: epochs without a lower val_loss (default: off); best weights restored")
    train.add_argument("--checkpoint-dir", default=None, help="save the training state here after every epoch "
                       "(default: OUT.checkpoint)")
    train.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    train.add_argument("--seed", type=_count(0), default=t.seed, help="shuffle, split, init and dropout seed (default 0)")
    train.add_argument("--quiet", action="store_true", help="no progress bars and no per-epoch lines")
    train.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's; results depend on the count: float sums change order)")
    from loopynet.presets import PRESETS

    train.add_argument("--preset", choices=sorted(PRESETS), default=None,
                       help="a named recipe (see loopynet/presets.py, README); flags given explicitly override it")
    train.add_argument("--cell", choices=["rnn", "gru", "lstm"], default=m.cell,
                       help="rnn: Keras SimpleRNN (book); gru/lstm: torch.nn.GRU/LSTM (default rnn)")
    train.add_argument("--layers", type=int, default=m.layers, help="stacked recurrent layers, --dropout between (default 1)")
    train.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=m.bidirectional,
                       help="add a backward direction (reversed within each review's length), outputs concatenated")
    train.add_argument("--head", choices=["flatten", "last", "mean", "max"], default=m.head,
                       help="flatten (book) or the padding-safe last/mean/max over real tokens (default flatten)")
    train.add_argument("--stateful", action=argparse.BooleanOptionalAction, default=m.stateful,
                       help="run documents in chunks of --chunk-len tokens carrying the state (truncated BPTT)")
    train.add_argument("--chunk-len", type=int, default=m.chunk_len, help="tokens per chunk with --stateful")
    train.add_argument("--train-embeddings", action=argparse.BooleanOptionalAction, default=m.train_embeddings,
                       help="fine-tune the word vectors (sparse SparseAdam updates of the rows a batch uses)")
    train.add_argument("--ngram", type=int, default=m.ngram,
                       help="add a naive-Bayes-weighted logistic model on 1..N-grams, mixed on validation (default 0: off)")
    train.add_argument("--rnn-maxlen", type=int, default=m.rnn_maxlen,
                       help="with --ngram: tokens the recurrent part reads (default: --maxlen)")
    train.add_argument("--init-from", default=None, help="start from a saved model folder's weights (same data "
                       "options: same vocabulary); with --ngram its recurrent part, e.g. with --epochs 0 to only "
                       "fit the n-gram model and the mix")
    if train_defaults:
        train.set_defaults(**train_defaults)

    ev = sub.add_parser("evaluate", help="metrics of a model folder on a labelled split (default: test)")
    ev.add_argument("model", help="model folder")
    _add_data_args(ev)
    ev.add_argument("--split", default="test", help="default: test")
    ev.add_argument("--threshold", type=_probability, default=0.5)
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    pr = sub.add_parser("predict", help="P(positive) and label for texts (arguments, --file, or stdin)")
    pr.add_argument("model", help="model folder")
    pr.add_argument("texts", nargs="*", help="texts to classify")
    pr.add_argument("--file", help="one text per line ('-' for stdin)")
    pr.add_argument("--threshold", type=_probability, default=0.5)
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
    tune.add_argument("--seed", type=_count(0), default=t.seed, help="data shuffle, split, init and sampler seed (default 0)")
    tune.add_argument("--heartbeat", type=int, default=30,
                      help="seconds between worker heartbeats; a trial silent for twice that is failed and retried (default 30)")
    tune.add_argument("--save-best", action="store_true", help="retrain the best configuration into OUT/best-model")
    tune.add_argument("--quiet", action="store_true", help="only warnings from Optuna")

    tag = sub.add_parser("tag", help="sequence tagger (CoNLL-2003 NER): train | evaluate | predict").add_subparsers(
        dest="tag_command", required=True)
    tt = tag.add_parser("train", help="train a (bi)RNN/GRU/LSTM tagger and save a model folder")
    tt.add_argument("--data", required=True, help="CoNLL-2003 folder with train.txt and valid.txt")
    tt.add_argument("--vectors", required=True, nargs="+",
                    help="word vectors: word2vec .bin/.bin.gz or text/GloVe; several files are concatenated per word")
    tt.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    tt.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="lstm", help="default: lstm")
    tt.add_argument("--units", type=int, default=200, help="units per direction (default 200)")
    tt.add_argument("--unidirectional", action="store_true", help="forward RNN only (default: bidirectional)")
    tt.add_argument("--dropout", type=float, default=0.5, help="on step inputs and RNN outputs (default 0.5)")
    tt.add_argument("--word-dropout", type=float, default=0.0, help="replace word ids by <unk> in training with this probability (default 0)")
    tt.add_argument("--casing-dims", type=int, default=8, help="casing-class embedding size, 0 = off (default 8)")
    tt.add_argument("--char-filters", type=int, default=50, help="character CNN filters, 0 = off (default 50)")
    tt.add_argument("--char-dims", type=int, default=25, help="character embedding size (default 25)")
    tt.add_argument("--no-crf", action="store_true", help="per-step softmax instead of a CRF layer")
    tt.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=True,
                    help="fine-tune the vectors of words seen in training (default: on)")
    tt.add_argument("--tag-scheme", choices=TAG_SCHEMES, default="iobes",
                    help="tags the model learns (default iobes; the data's are iob2); output is always IOB2")
    tt.add_argument("--no-lowercase-fallback", action="store_true", help="look tokens up only as written")
    tt.add_argument("--vector-scale", choices=["none", "unit", "standard"], default="standard",
                    help="scale the vectors: as stored, unit rows, or table / std (default)")
    tt.add_argument("--limit", type=_count(1), default=None, help="use only the first N training sentences")
    tt.add_argument("--validation-limit", type=_count(1), default=None, help="use only the first N validation sentences")
    tt.add_argument("--batch-size", type=int, default=32, help="default 32")
    tt.add_argument("--epochs", type=int, default=30, help="at most this many (default 30)")
    tt.add_argument("--lr", type=float, default=1e-3, help="default 1e-3")
    tt.add_argument("--optimizer", choices=["rmsprop", "adam"], default="adam", help="default: adam")
    _add_schedule_args(tt, TrainConfig(ema_decay=0.999))
    tt.add_argument("--clip-norm", type=float, default=5.0, help="clip the gradient's global norm (default 5; 0 = off)")
    tt.add_argument("--patience", type=int, default=5, help="early stopping on --monitor (default 5; 0 = off)")
    tt.add_argument("--monitor", choices=["val_loss", "val_f1"], default="val_loss",
                    help="validation metric for early stopping and best-epoch selection (default val_loss)")
    tt.add_argument("--checkpoint-dir", default=None, help="training state after every epoch (default: OUT.checkpoint)")
    tt.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    tt.add_argument("--seed", type=_count(0), default=t.seed, help="shuffle, init and dropout seed (default 0)")
    tt.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; 1 is faster on a busy machine)")
    tt.add_argument("--quiet", action="store_true", help="no progress bars and no per-epoch lines")
    te = tag.add_parser("evaluate", help="entity P/R/F1 per type and token accuracy of a tagger on a split")
    te.add_argument("model", help="model folder")
    te.add_argument("--split", default="test", help="train | valid | test (default: test)")
    te.add_argument("--data", default=None, help="CoNLL folder (default: the one stored in the model)")
    te.add_argument("--limit", type=_count(1), default=None, help="only the first N sentences")
    te.add_argument("--json", action="store_true", help="print one JSON object")
    te.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    tp = tag.add_parser("predict", help="tags and entity spans for texts (arguments, --file, or stdin)")
    tp.add_argument("model", help="model folder")
    tp.add_argument("texts", nargs="*", help="texts to tag")
    tp.add_argument("--file", help="one text per line ('-' for stdin)")
    tp.add_argument("--json", action="store_true", help="print a JSON list of {text, tokens, tags, entities}")

    diagnose = sub.add_parser("diagnose", help="diagnostics").add_subparsers(dest="diagnose_command", required=True)
    grads = diagnose.add_parser("gradients", help="‖∂loss/∂h_t‖ per time step on real reviews (vanishing gradients): "
                                "writes OUT/gradients.png and OUT/gradients.json")
    _add_data_args(grads)
    grads.add_argument("--vectors", required=True, help="word vectors, as for train")
    grads.add_argument("--out", default="docs", help="folder for gradients.png and gradients.json (default: docs)")
    grads.add_argument("--cells", default="rnn,lstm", help="comma-separated cells among rnn,gru,lstm (default rnn,lstm)")
    grads.add_argument("--maxlen", type=int, default=d.maxlen, help="time steps: reviews with at least this many tokens (default 400)")
    grads.add_argument("--units", type=int, default=m.units, help="default 50 (the book)")
    grads.add_argument("--batches", type=_count(1), default=4, help="measured batches (default 4)")
    grads.add_argument("--batch-size", type=_count(1), default=32, help="default 32")
    grads.add_argument("--train-steps", type=_count(0), default=0,
                       help="also measure after this many Adam steps on other long reviews (default 0: initialisation only)")
    grads.add_argument("--vector-norm", choices=VECTOR_NORMS, default="none",
                       help="scale word vectors to unit L2 norm (default: none, the book's pipeline; the shared "
                            "vectors' norms are ~48)")
    grads.add_argument("--seed", type=_count(0), default=t.seed)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="download a dataset archive into $LOOPYNET_HOME/data")
    fetch.add_argument("name", help="dataset name (imdb)")
    fetch.add_argument("--url", help="mirror URL of the same archive")
    fetch.add_argument("--md5", help="expected MD5 when the mirror serves another build (default: the publisher's)")
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse `argv`; `train --preset NAME` makes the preset's values the defaults (explicit flags win).
    Texts given to `predict`/`tag predict` after its options (`predict DIR --json "text"`) count too."""
    args = _parse_with(argv)
    if getattr(args, "preset", None):  # parse again with the preset's values as defaults
        from loopynet.presets import PRESETS

        args = _parse_with(argv, PRESETS[args.preset]["flags"])
    return args


def _parse_with(argv: list[str] | None, train_defaults: dict | None = None) -> argparse.Namespace:
    parser = build_parser(train_defaults)
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "texts") and not any(e.startswith("-") and e != "-" for e in extra):
        args.texts += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    # Idle OpenMP threads sleep instead of spinning: with other jobs on a small machine, spinning
    # waits made training steps ~10x slower (measured, benchmarks/README.md). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from loopynet.errors import USER_ERRORS  # heavy imports only after parsing (fast --help)

    if getattr(args, "threads", None) is not None:  # train, tag train, tag evaluate
        if not 1 <= args.threads <= MAX_THREADS:
            print(f"loopynet {args.command}: error: --threads must be 1 to {MAX_THREADS}, got {args.threads}",
                  file=sys.stderr)
            return EXIT_ERROR
        import torch

        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args) or 0
    except USER_ERRORS as err:
        print(f"loopynet {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"loopynet {args.command}: interrupted; no file was left half-written, an existing model folder "
              "is unchanged (train --resume continues from the last epoch's checkpoint)", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_train(args) -> int:
    from loopynet.tasks.classification.api import Classifier

    data_config = DataConfig(maxlen=args.maxlen, val_split=args.val_split, oov=args.oov,
                             encoding_errors=args.encoding_errors or "strict", limit=args.limit,
                             strip_html=args.strip_html, split_periods=args.split_periods, map_quotes=args.map_quotes,
                             vector_norm=args.vector_norm, word_weights=args.word_weights, sif_a=args.sif_a)
    model_config = ModelConfig(units=args.units, dropout=args.dropout, maxlen=args.maxlen,
                               embedding_dims=args.embedding_dims or ModelConfig.embedding_dims,
                               cell=args.cell, layers=args.layers, bidirectional=args.bidirectional, head=args.head,
                               stateful=args.stateful, chunk_len=args.chunk_len,
                               train_embeddings=args.train_embeddings, ngram=args.ngram, rnn_maxlen=args.rnn_maxlen)
    train_config = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, lr=args.lr, rho=args.rho,
                               epsilon=args.epsilon, seed=args.seed,
                               optimizer=args.optimizer, clip_norm=args.clip_norm, patience=args.patience,
                               lr_decay=args.lr_decay, ema_decay=args.ema_decay)
    checkpoints = _outputs_checked(args)
    clf = Classifier.train(args.data, args.vectors, data_config, model_config, train_config, split=args.split,
                           progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                           checkpoint_dir=checkpoints, resume=args.resume, init_from=args.init_from)
    out = clf.save(args.out)
    print(f"saved {out}")
    return 0


def _outputs_checked(args) -> str:
    """The checkpoint folder of a training command, after checking (before any work) that `--out` may be
    written (`loopynet.io.artifact.check_out`) and that the checkpoint path is not a file.
    Raises ArtifactError."""
    from loopynet.io.artifact import ArtifactError, check_out

    check_out(args.out)
    checkpoints = args.checkpoint_dir or f"{args.out.rstrip('/')}.checkpoint"
    if os.path.exists(checkpoints) and not os.path.isdir(checkpoints):
        raise ArtifactError(f"checkpoint folder {checkpoints} exists and is not a folder; pass another --checkpoint-dir")
    return checkpoints


def cmd_evaluate(args) -> int:
    from loopynet.tasks.classification.api import Classifier

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


def _read_texts(args) -> list[str]:
    """Texts from the arguments, then `--file` (one per line, '-' = stdin); stdin when neither is given.
    No text at all is said on stderr (the output is then empty, `--json`: [])."""
    texts = _texts_given(args)
    if not texts:
        print(f"loopynet {args.command}: no text given (as arguments, with --file, or on stdin)", file=sys.stderr)
    return texts


def _texts_given(args) -> list[str]:
    texts = list(args.texts)
    if args.file == "-":
        texts += [line.rstrip("\n") for line in sys.stdin]
    elif args.file:
        texts += _utf8_lines(Path(args.file))
    elif not texts:
        texts = [line.rstrip("\n") for line in sys.stdin]
    return texts


def _utf8_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends. Raises ValueError naming the file, line and
    byte offset of the first invalid byte; OSError for a missing or unreadable file."""
    lines = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid UTF-8 at byte {err.start} of the line ({err.reason})") from None
    return lines


def cmd_predict(args) -> int:
    from loopynet.tasks.classification.api import Classifier

    texts = _read_texts(args)
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
        from loopynet.tasks.classification.api import Classifier

        clf = Classifier.load(args.model)
        from loopynet.models.factory import is_book

        if not is_book(clf.model.config):  # GRU/LSTM, bidirectional, other heads, n-grams
            from loopynet.models.recurrent_classifier import describe

            print(describe(clf.model))
            return 0
        print(summary(clf.model.config, len(clf.vocab)))
    else:
        from loopynet.config import check_model

        config = ModelConfig(units=args.units, maxlen=args.maxlen, embedding_dims=args.embedding_dims)
        check_model(config)
        print(summary(config))
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
    print(f"reproduce: {best['shell_command']}")
    for note in best["notes"]:
        print(f"note: {note}")
    if best["not_in_command"]:
        print(f"note: loopynet train has no flag for {best['not_in_command']}: the command trains their defaults")
    return 0


def cmd_diagnose(args) -> int:
    from loopynet.inspect.gradients import diagnose

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = sorted(set(cells) - {"rnn", "gru", "lstm"})
    if unknown or not cells:
        raise ValueError(f"--cells must name rnn, gru or lstm, got {args.cells!r}")
    data_config = DataConfig(**{**BOOK_DATA, "vector_norm": args.vector_norm},
                             encoding_errors=args.encoding_errors or "strict", limit=args.limit)
    diagnose(args.data, args.vectors, cells, args.out, maxlen=args.maxlen, units=args.units, batches=args.batches,
             batch_size=args.batch_size, train_steps=args.train_steps, seed=args.seed, data_config=data_config,
             log=lambda line: print(line, file=sys.stderr))
    print(f"wrote {args.out.rstrip('/')}/gradients.png and gradients.json")
    return 0


def cmd_data(args) -> int:
    from loopynet.data.fetch import fetch

    print(fetch(args.name, url=args.url, md5=args.md5))
    return 0


def cmd_tag(args) -> int:
    if args.tag_command == "train":
        from loopynet.config import TaggerConfig, TaggerDataConfig, tagger_train_config
        from loopynet.tasks.tagging.api import Tagger

        data_config = TaggerDataConfig(lowercase_fallback=not args.no_lowercase_fallback, vector_scale=args.vector_scale,
                                       finetune=args.finetune, limit=args.limit, validation_limit=args.validation_limit,
                                       tag_scheme=args.tag_scheme)
        model_config = TaggerConfig(cell=args.cell, units=args.units, bidirectional=not args.unidirectional,
                                    dropout=args.dropout, word_dropout=args.word_dropout, casing_dims=args.casing_dims, char_dims=args.char_dims,
                                    char_filters=args.char_filters, crf=not args.no_crf)
        train_config = tagger_train_config(batch_size=args.batch_size, epochs=args.epochs, lr=args.lr, seed=args.seed,
                                           optimizer=args.optimizer, clip_norm=args.clip_norm or None,
                                           patience=args.patience or None, monitor=args.monitor,
                                           lr_decay=args.lr_decay, ema_decay=args.ema_decay)
        tagger = Tagger.train(args.data, args.vectors, data_config, model_config, train_config,
                              progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                              checkpoint_dir=_outputs_checked(args), resume=args.resume)
        print(f"saved {tagger.save(args.out)}")
        return 0
    from loopynet.tasks.tagging.api import Tagger

    tagger = Tagger.load(args.model)
    if args.tag_command == "evaluate":
        m = tagger.evaluate(args.split, args.data, args.limit)
        if args.json:
            print(json.dumps(m))
            return 0
        print(f"{m['split']} split: {m['sentences']:,} sentences, {m['tokens']:,} tokens, {m['entities']:,} entities")
        print(f"{'type':>8} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}")
        for name, v in m["per_type"].items():
            print(f"{name:>8} {v['precision']:9.4f} {v['recall']:7.4f} {v['f1']:7.4f} {v['support']:7d}")
        print(f"{'overall':>8} {m['precision']:9.4f} {m['recall']:7.4f} {m['f1']:7.4f} {m['entities']:7d}")
        print(f"token accuracy {m['token_accuracy']:.4f}, loss {m['loss']:.4f}, OOV {m['oov_rate']:.2%}")
        return 0
    texts = _read_texts(args)
    results = tagger.predict(texts)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    for r in results:
        print(" ".join(f"{tok}/{tag}" for tok, tag in zip(r["tokens"], r["tags"])))
        for e in r["entities"]:
            print(f"  {e['type']}\t{e['text']}\t[{e['start']}, {e['end']})")
    return 0


def _version() -> str:
    from loopynet import __version__

    return __version__


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary, "tune": cmd_tune,
            "data": cmd_data, "tag": cmd_tag, "diagnose": cmd_diagnose}

if __name__ == "__main__":
    sys.exit(main())
