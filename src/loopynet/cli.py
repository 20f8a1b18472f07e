"""Command line: `loopynet train | evaluate | predict | summary | tune | data fetch | import | export`.
Argument handling only."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path

from loopynet.config import (
    BOOK_DATA,
    CLASSIFIER_VECTOR_NORMS,
    COMMAND_FIELDS,
    DEPRECATED,
    FLAGS,
    DataConfig,
    Flag,
    ModelConfig,
    TaggerConfig,
    TaggerDataConfig,
    TrainConfig,
    TuneSettings,
    field_type,
    option,
    tagger_train_config,
)
from loopynet.errors import InputError, UsageError, UserError
from loopynet.models.kernel_sources import kernels_expected
from loopynet.omp_policy import choose_wait_policy

EXIT_ERROR = 2
EXIT_BUG = 1
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
                   help="non-UTF-8 files: stop, or replace the bad bytes (default: the model's setting, strict)")
    p.add_argument("--limit", type=_count(1), default=None, help="use only N documents, a seeded random slice "
                   "(default: all)")


class Switch(argparse.Action):
    """An on/off option: `--name` sets True, `--no-name` False (argparse.BooleanOptionalAction without the
    default that some Python versions append to the help)."""

    def __init__(self, option_strings, dest, default=None, help=None):
        names = [n for name in option_strings for n in (name, "--no-" + name[2:])]
        super().__init__(names, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


_WARNED: set[str] = set()


def _deprecated(alias: str, new: str):
    """An argparse action for `alias`, the deprecated spelling of `new`: a switch that sets its `const`, or
    (const None) an option taking the value; it warns once per process on stderr."""

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            if alias not in _WARNED:
                _WARNED.add(alias)
                print(f"{parser.prog}: warning: {alias} is deprecated; use {new}", file=sys.stderr)
            setattr(namespace, self.dest, values if self.const is None else self.const)

    return Deprecated


def _value_type(kind: type, spec: Flag):
    """argparse type of a config option: int (>= spec.minimum), float or str; 0 means None with spec.zero_off."""
    parse = _count(spec.minimum) if kind is int and spec.minimum is not None else kind

    def value(text: str):
        if text in spec.keywords:
            return text
        result = parse(text)
        return None if spec.zero_off and result == 0 else result

    value.__name__ = getattr(parse, "__name__", kind.__name__)  # argparse names it in "invalid ... value"
    return value


def add_config_options(p: argparse.ArgumentParser, command: str, defaults: dict) -> None:
    """The options of `command` from the table in loopynet.config (`COMMAND_FIELDS`, `FLAGS`), with
    `defaults` (field -> value) as defaults; deprecated aliases too."""
    added = set()
    for cls, names in COMMAND_FIELDS[command]:
        for name in (n for n in names if n not in added):
            added.add(name)
            spec, kind = FLAGS[name], field_type(cls, name)
            if kind is bool:
                p.add_argument(option(name), action=Switch, default=defaults[name], help=spec.help_text(defaults[name]))
            else:
                p.add_argument(option(name), type=_value_type(kind, spec), choices=spec.choices, default=defaults[name],
                               help=spec.help_text(defaults[name]))
    for alias, name, value in DEPRECATED.get(command, ()):
        new = option(name) if value is None or value else "--no-" + option(name)[2:]
        p.add_argument(alias, dest=name, action=_deprecated(alias, new), nargs=0 if value is not None else None,
                       const=value, choices=FLAGS[name].choices if value is None else None, help=f"deprecated: use {new}")


def add_device_option(*parsers: argparse.ArgumentParser) -> None:
    """`--device` from the table (FLAGS["device"]) on commands whose device is not a config field (tune's is
    TuneSettings.device, added by add_config_options)."""
    spec = FLAGS["device"]
    for p in parsers:
        p.add_argument(option("device"), choices=spec.choices, default="auto", help=spec.help_text("auto"))


def _defaults(*configs) -> dict:
    """field -> default of config instances or classes (a class' fields without a default are left out)."""
    values = {}
    for config in configs:
        for f in dataclasses.fields(config):
            if isinstance(config, type):
                if f.default is not dataclasses.MISSING:
                    values[f.name] = f.default
            else:
                values[f.name] = getattr(config, f.name)
    return values


def _add_out_args(p: argparse.ArgumentParser) -> None:
    """Options of the training commands that are not settings of the model."""
    p.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    p.add_argument("--checkpoint-dir", default=None, help="save the training state here after every epoch "
                   "(default: OUT.checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no per-epoch lines (default: off)")
    p.add_argument("--threads", type=int, default=None, help=f"torch CPU threads, 1 to {MAX_THREADS} (default: torch's; "
                   "results depend on the count: float sums change order)")


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The argument parser; `train_defaults` (a preset's values) replace `loopynet train`'s defaults."""
    parser = OneLineErrors(prog="loopynet", description="Recurrent neural networks over text.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"loopynet {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the book's SimpleRNN classifier (or a GRU/LSTM one) and save a "
                           "model folder", allow_abbrev=False)
    train.add_argument("--data", required=True, help="aclImdb root folder, split folder, or .tar.gz of either")
    train.add_argument("--vectors", required=True, help="word vectors: word2vec binary or text, or GloVe text, plain "
                       "or gzip/bz2/xz/zip-compressed (the format is read from the content, not the name)")
    train.add_argument("--split", default="train", help="split folder inside a root (default: train)")
    add_config_options(train, "train", _defaults(DataConfig(), ModelConfig(), TrainConfig()))
    _add_out_args(train)
    from loopynet.presets import PRESETS

    train.add_argument("--preset", choices=sorted(PRESETS), default=None,
                       help="a named recipe (see loopynet/presets.py, README); flags given explicitly override it "
                            "(default: none)")
    train.add_argument("--init-from", default=None, help="start from a saved model folder's weights (same data "
                       "options: same vocabulary); with --ngram its recurrent part, e.g. with --epochs 0 to only "
                       "fit the n-gram model and the mix (default: random initial weights)")
    if train_defaults:
        train.set_defaults(**train_defaults)

    ev = sub.add_parser("evaluate", help="metrics of a model folder on a labelled split (default: test)",
                        allow_abbrev=False)
    ev.add_argument("model", help="model folder")
    _add_data_args(ev)
    ev.add_argument("--split", default="test", help="split folder inside a root (default: test)")
    ev.add_argument("--threshold", type=_probability, default=None,
                    help="label positive when P(positive) >= this (default: the threshold saved with the model, "
                         "0.5 unless trained with --threshold)")
    ev.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")

    pr = sub.add_parser("predict", help="P(positive) and label for texts (arguments, --file, or stdin)",
                        allow_abbrev=False)
    pr.add_argument("model", help="model folder, or FILE.onnx from `loopynet export` (runs on onnxruntime, no torch)")
    pr.add_argument("texts", nargs="*", help="texts to classify")
    pr.add_argument("--file", help="one text per line, '-' for stdin (default: the arguments, else stdin)")
    pr.add_argument("--threshold", type=_probability, default=None,
                    help="label positive when P(positive) >= this (default: the threshold saved with the model, "
                         "0.5 unless trained with --threshold)")
    pr.add_argument("--json", action="store_true", help="print a JSON list of {text, probability, label} "
                    "(default: one tab-separated line per text)")

    m = ModelConfig()
    sm = sub.add_parser("summary", help="the Keras-style layer table of a model folder or of settings",
                        allow_abbrev=False)
    sm.add_argument("model", nargs="?", help="model folder (else the book's network with the options below)")
    sm.add_argument("--units", type=_count(1), default=None, help=f"without a folder: recurrent units (default: {m.units})")
    sm.add_argument("--maxlen", type=_count(1), default=None,
                    help=f"without a folder: tokens per document (default: {m.maxlen} tokens)")
    sm.add_argument("--embedding-dims", type=_count(1), default=None,
                    help=f"without a folder: word-vector dimensions (default: {m.embedding_dims})")

    tune = sub.add_parser("tune", help="search hyperparameters with Optuna (random or TPE), resumable and parallel",
                          allow_abbrev=False)
    tune.add_argument("--data", required=True, help="aclImdb root folder, split folder, or .tar.gz of either")
    tune.add_argument("--vectors", required=True, help="word vectors, as for train")
    tune.add_argument("--out", required=True, help="results folder: best.json, trials.csv, plots (and study.db)")
    tune.add_argument("--space", help="search space TOML (default: the book's 8.4 list, loopynet/tune/default_space.toml)")
    add_config_options(tune, "tune", _defaults(TuneSettings))

    tag = sub.add_parser("tag", help="sequence tagger (CoNLL-2003 NER): train | evaluate | predict",
                         allow_abbrev=False).add_subparsers(dest="tag_command", required=True)
    tt = tag.add_parser("train", help="train a (bi)RNN/GRU/LSTM tagger and save a model folder", allow_abbrev=False)
    tt.add_argument("--data", required=True, help="CoNLL-2003 folder with train.txt and valid.txt")
    tt.add_argument("--vectors", required=True, nargs="+",
                    help="word vectors, as for train; several files are concatenated per word")
    add_config_options(tt, "tag train", _defaults(TaggerDataConfig(), TaggerConfig(), tagger_train_config()))
    _add_out_args(tt)
    te = tag.add_parser("evaluate", help="entity P/R/F1 per type and token accuracy of a tagger on a split",
                        allow_abbrev=False)
    te.add_argument("model", help="model folder")
    te.add_argument("--split", default="test", help="train | valid | test (default: test)")
    te.add_argument("--data", default=None, help="CoNLL folder (default: the one stored in the model)")
    te.add_argument("--limit", type=_count(1), default=None, help="only the first N sentences (default: all)")
    te.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    te.add_argument("--threads", type=int, default=None, help=f"torch CPU threads, 1 to {MAX_THREADS} (default: torch's)")
    tp = tag.add_parser("predict", help="tags and entity spans for texts (arguments, --file, or stdin)",
                        allow_abbrev=False)
    tp.add_argument("model", help="model folder, or FILE.onnx from `loopynet export` (runs on onnxruntime, no torch)")
    tp.add_argument("texts", nargs="*", help="texts to tag")
    tp.add_argument("--file", help="one text per line, '-' for stdin (default: the arguments, else stdin)")
    tp.add_argument("--json", action="store_true", help="print a JSON list of {text, tokens, tags, entities} "
                    "(default: token/TAG lines and entity lines)")

    t = TrainConfig()
    diagnose = sub.add_parser("diagnose", help="diagnostics", allow_abbrev=False).add_subparsers(
        dest="diagnose_command", required=True)
    grads = diagnose.add_parser("gradients", help="‖∂loss/∂h_t‖ per time step on real reviews (vanishing gradients): "
                                "writes OUT/gradients.png and OUT/gradients.json", allow_abbrev=False)
    _add_data_args(grads)
    grads.add_argument("--vectors", required=True, help="word vectors, as for train")
    grads.add_argument("--out", default="docs", help="folder for gradients.png and gradients.json (default: docs)")
    grads.add_argument("--cells", default="rnn,lstm", help="comma-separated cells among rnn,gru,lstm (default: rnn,lstm)")
    grads.add_argument("--maxlen", type=_count(1), default=m.maxlen,
                       help=f"time steps: reviews with at least this many tokens (default: {m.maxlen} tokens)")
    grads.add_argument("--units", type=_count(1), default=m.units, help=f"recurrent units (default: {m.units}, the book)")
    grads.add_argument("--batches", type=_count(1), default=4, help="measured batches (default: 4)")
    grads.add_argument("--batch-size", type=_count(1), default=32, help="reviews per batch (default: 32)")
    grads.add_argument("--train-steps", type=_count(0), default=0,
                       help="also measure after this many Adam steps on other long reviews (default: 0, "
                            "initialisation only)")
    grads.add_argument("--vector-norm", choices=CLASSIFIER_VECTOR_NORMS, default="none",
                       help="word vectors as stored (none, the book's pipeline), unit L2 norm, or all-but-the-top "
                            "(default: none; the shared vectors' norms are ~48)")
    grads.add_argument("--seed", type=_count(0), default=t.seed, help=f"batches and initial weights (default: {t.seed})")

    ex = sub.add_parser("export", help="write a model folder in another framework's format", allow_abbrev=False)
    ex.add_argument("model", help="model folder")
    ex.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS),
                    help="keras: a Keras 3 .keras file (classifiers); onnx: FILE.onnx for onnxruntime, opset 17 "
                         "(classifiers and taggers), + FILE.onnx.json: vocabulary, maxlen, tokenizer options, "
                         "class names")
    ex.add_argument("--out", required=True, help="file to write (atomically)")
    from loopynet.interop.commands import add_import_arguments

    keras_import = sub.add_parser("import", help="import a model from another framework into a model folder",
                                  allow_abbrev=False).add_subparsers(dest="import_format", required=True).add_parser(
        "keras", help="a Keras classifier: model JSON + weights .h5 (Keras 2, the book's pair, or Keras 3 "
                      ".weights.h5), a full-model .h5, or a .keras archive", allow_abbrev=False)
    add_import_arguments(keras_import)
    add_config_options(keras_import, "import keras", _defaults(DataConfig(**BOOK_DATA)))

    add_device_option(train, ev, pr, tt, te, tp)
    data = sub.add_parser("data", help="datasets", allow_abbrev=False).add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="download a dataset archive into $LOOPYNET_HOME/data", allow_abbrev=False)
    fetch.add_argument("name", help="dataset name (imdb)")
    fetch.add_argument("--url", help="mirror URL of the same archive (default: the publisher's)")
    fetch.add_argument("--md5", help="expected MD5 when the mirror serves another build (default: the publisher's)")

    from loopynet.explain.cli import register as register_explain  # explain, encode

    COMMANDS.update(register_explain(sub, _count, _probability, _read_texts, add_device_option))
    from loopynet.serve.command import add_parser as add_serve

    add_serve(sub)
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
    elif extra:  # said by the subcommand's parser: "loopynet train: error: unrecognized arguments: ..."
        _subparser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _subparser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand parser `args` went through (e.g. the one of `loopynet tag train`)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, sub.dest, None) not in sub.choices:
            return parser
        parser = sub.choices[getattr(args, sub.dest)]


def main(argv: list[str] | None = None) -> int:
    """Run the command of `argv`: 0 on success, 2 on bad input (one line on stderr; usage errors exit
    through argparse), 130 when interrupted, 1 on a bug in loopynet (its traceback and a line asking for
    a report)."""
    args = parse(argv)
    prog = f"loopynet {args.command}"

    # OpenMP's idle threads sleep where the classifier's C kernels run or the machine is overloaded (omp_policy.py;
    # the tagger, whose step is mostly torch ops around its kernels, trained faster idle with OpenMP's default)
    choose_wait_policy(compiled_kernels=args.command != "tag" and kernels_expected(getattr(args, "device", "auto")))

    if getattr(args, "threads", None) is not None:  # train, tag train, tag evaluate
        if not 1 <= args.threads <= MAX_THREADS:
            print(f"{prog}: error: --threads must be 1 to {MAX_THREADS}, got {args.threads}", file=sys.stderr)
            return EXIT_ERROR
        import torch

        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args) or 0
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:
        if err.filename is None:  # not about a file the user named: a bug (re-raised, traceback below)
            return _bug(prog)
        print(f"{prog}: error: {err.filename}: {err.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no file was left half-written, an existing model folder "
              "is unchanged (train --resume continues from the last epoch's checkpoint)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - anything else is a bug: keep its traceback
        return _bug(prog)


def _bug(prog: str) -> int:
    """Print the exception being handled with its traceback and a line asking for a report; EXIT_BUG."""
    traceback.print_exc()
    print(f"{prog}: this is a bug in loopynet {_version()}, please report it with the traceback above "
          "and the command line", file=sys.stderr)
    return EXIT_BUG


def configs_from(command: str, args: argparse.Namespace, *bases) -> list:
    """The configs of `command` (one per entry of COMMAND_FIELDS[command]): each of `bases` with the
    command's options replaced by the parsed values."""
    values = vars(args)
    return [dataclasses.replace(base, **{name: values[name] for name in names})
            for base, (_, names) in zip(bases, COMMAND_FIELDS[command])]


def cmd_train(args) -> int:
    from loopynet.tasks.classification.api import Classifier

    data_config, model_config, train_config = configs_from("train", args, DataConfig(), ModelConfig(), TrainConfig())
    checkpoints = _outputs_checked(args)
    clf = Classifier.train(args.data, args.vectors, data_config, model_config, train_config, split=args.split,
                           progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                           checkpoint_dir=checkpoints, resume=args.resume, init_from=args.init_from,
                           device=args.device)
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

    metrics = Classifier.load(args.model, args.device).evaluate(args.data, args.split, args.threshold, args.encoding_errors, args.limit)
    if args.json:
        print(json.dumps(metrics))
        return 0
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    print(f"{metrics['split']} split, {metrics['support']:,} documents, threshold {metrics['threshold']:.4f}")
    for name in ("accuracy", "baseline_accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                 "pr_auc", "loss"):
        print(f"{name:>17}: " + ("n/a (one class only)" if metrics[name] is None else f"{metrics[name]:.4f}"))
    print(f"confusion matrix (rows: true neg/pos, columns: predicted neg/pos):\n  [[{tn:6d} {fp:6d}]\n   [{fn:6d} {tp:6d}]]")
    return 0


def _read_texts(args) -> list[str]:
    """Texts from the arguments, then `--file` (one per line, '-' = stdin); stdin when neither is given.

    Raises:
        InputError: no text at all (an empty line is a text: the empty text).
    """
    texts = _texts_given(args)
    if not texts:
        raise InputError("no text given (as arguments, with --file, or on stdin)")
    return texts


def _texts_given(args) -> list[str]:
    """Arguments (a leading byte-order mark dropped), then `--file` / stdin lines."""
    texts = [text.removeprefix("\ufeff") for text in args.texts]
    if args.file == "-" or (not args.file and not texts):
        texts += _utf8_lines("<stdin>", sys.stdin.buffer.read())
    elif args.file:
        texts += _utf8_lines(args.file, Path(args.file).read_bytes())
    return texts


def _utf8_lines(name: str, data: bytes) -> list[str]:
    """The lines of UTF-8 text `data` (a leading byte-order mark dropped), without line ends.
    Raises InputError naming the file, line and byte offset of the first invalid byte."""
    from loopynet.data.text import decode_utf8

    lines = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            lines.append(decode_utf8(raw))
        except UnicodeDecodeError as err:
            raise InputError(f"{name}:{number}: not valid UTF-8 at byte {err.start} of the line ({err.reason})") from None
    return lines


def cmd_predict(args) -> int:
    texts = _read_texts(args)
    if args.model.endswith(".onnx"):  # onnxruntime and the tokenizer only: torch is never imported (no --device)
        from loopynet.export.runtime import OnnxClassifier

        model = OnnxClassifier(args.model)
    else:
        from loopynet.tasks.classification.api import Classifier

        model = Classifier.load(args.model, args.device)
    results = model.predict(texts, args.threshold)
    for i, r in enumerate(results, start=1):
        if r.get("known_tokens") == 0:
            print(f"loopynet predict: warning: text {i} has no token with a vector in the model's vocabulary "
                  f"({r['tokens']} tokens): its probability is the model's answer to an empty text", file=sys.stderr)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, allow_nan=False))
    else:
        for r in results:
            print(f"{r['label']}\t{r['probability']:.4f}\t{r['text'][:80]}")
    return 0


def cmd_summary(args) -> int:
    from loopynet.models.summary import summary

    given = [option(name) for name in ("units", "maxlen", "embedding_dims") if getattr(args, name) is not None]
    if args.model:
        if given:
            raise UsageError(f"{', '.join(given)} apply only without a model folder (the folder's network is "
                             "summarised as it was trained)")
        from loopynet.models.factory import is_book
        from loopynet.models.recurrent_classifier import describe
        from loopynet.tasks.classification.api import Classifier

        clf = Classifier.load(args.model)
        # GRU/LSTM, bidirectional, other heads, n-grams: a parameter table
        print(summary(clf.model.config, len(clf.vocab)) if is_book(clf.model.config) else describe(clf.model))
        return 0
    from loopynet.config import check_model

    m = ModelConfig()
    config = ModelConfig(units=args.units or m.units, maxlen=args.maxlen or m.maxlen,
                         embedding_dims=args.embedding_dims or m.embedding_dims)
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

    fixed = TuneSettings(args.data, args.vectors, Path(args.out), load_space(args.space))
    (settings,) = configs_from("tune", args, fixed)
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
    return 0


def cmd_diagnose(args) -> int:
    from loopynet.inspect.gradients import diagnose

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = sorted(set(cells) - {"rnn", "gru", "lstm"})
    if unknown or not cells:
        raise UsageError(f"--cells must name rnn, gru or lstm, got {args.cells!r}")
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
        from loopynet.tasks.tagging.api import Tagger

        data_config, model_config, train_config = configs_from("tag train", args, TaggerDataConfig(), TaggerConfig(),
                                                               tagger_train_config())
        tagger = Tagger.train(args.data, args.vectors, data_config, model_config, train_config,
                              progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                              checkpoint_dir=_outputs_checked(args), resume=args.resume, device=args.device)
        print(f"saved {tagger.save(args.out)}")
        return 0
    if args.tag_command == "predict" and args.model.endswith(".onnx"):  # onnxruntime + NumPy: torch never imported
        from loopynet.export.runtime import OnnxTagger

        tagger = OnnxTagger(args.model)
    else:
        from loopynet.tasks.tagging.api import Tagger

        tagger = Tagger.load(args.model, args.device)
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
        strict = m["strict"]
        print(f"{'strict':>8} {strict['precision']:9.4f} {strict['recall']:7.4f} {strict['f1']:7.4f}  "
              f"(seqeval strict, {strict['scheme']}; predicted sentences breaking the scheme: {m['invalid_sequences']})")
        print(f"token accuracy {m['token_accuracy']:.4f}, loss {m['loss']:.4f}, OOV {m['oov_rate']:.2%}")
        return 0
    texts = _read_texts(args)
    results = tagger.predict(texts)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, allow_nan=False))
        return 0
    for r in results:
        print(" ".join(f"{tok}/{tag}" for tok, tag in zip(r["tokens"], r["tags"])))
        for e in r["entities"]:
            print(f"  {e['type']}\t{e['text']}\t[{e['start']}, {e['end']})")
    return 0


EXPORT_FORMATS = {"keras": "loopynet.interop.keras_export:export_keras",  # --format -> "module:function(model, out)"
                  "onnx": "loopynet.export.onnx:export_onnx"}


def cmd_export(args) -> int:
    import importlib

    module, function = EXPORT_FORMATS[args.format].split(":")
    print(f"saved {getattr(importlib.import_module(module), function)(args.model, args.out)}")
    return 0


def cmd_import(args) -> int:
    from loopynet.interop.commands import run_import

    return run_import(args, *configs_from("import keras", args, DataConfig(**BOOK_DATA)))


def _version() -> str:
    from loopynet.version import __version__

    return __version__


def cmd_serve(args) -> int:
    from loopynet.serve.command import cmd_serve as run

    return run(args)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary, "tune": cmd_tune,
            "data": cmd_data, "tag": cmd_tag, "diagnose": cmd_diagnose, "export": cmd_export, "import": cmd_import,
            "serve": cmd_serve}

if __name__ == "__main__":
    sys.exit(main())
