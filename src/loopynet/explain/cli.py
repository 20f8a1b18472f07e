"""`loopynet explain` and `loopynet encode`: argument handling and printing only (the work is in this package).

    loopynet explain MODEL "text ..." [--file F] [--html report.html] [--png tokens.png] [--json] [--steps 50]
    loopynet explain MODEL --data D --split test --limit N --top 30 [--html top.html] [--png top.png] [--json]
    loopynet encode  MODEL --data D --split test [--limit N] [--out vectors.parquet|.npy] [--map map.html] [--png map.png]
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from loopynet.errors import InputError, UsageError
from loopynet.explain.attribution import DEFAULT_STEPS
from loopynet.explain.projection import METHODS


THRESHOLD_HELP = ("label positive when P(positive) >= this (default: the threshold saved with the model, "
                  "0.5 unless trained with --threshold)")
ENCODING_HELP = "non-UTF-8 files: stop, or replace the bad bytes (default: the model's setting, strict)"


def register(sub, count, probability, read_texts, add_device_option) -> dict:
    """Add the `explain` and `encode` subcommands to argparse's `sub`; returns {name: command function}.
    `count(minimum)` and `probability` are the CLI's argparse types, `read_texts(args)` its reader of texts
    from the arguments, --file or stdin, `add_device_option(*parsers)` adds its --device."""
    ex = sub.add_parser("explain", help="per-token evidence, P(prefix) and hidden states of a prediction, "
                        "as text, JSON, an HTML page and PNG; with --data: the strongest words over a split")
    ex.add_argument("model", help="model folder of a classifier")
    ex.add_argument("texts", nargs="*", help="texts to explain")
    ex.add_argument("--file", help="one text per line, '-' for stdin (default: the arguments, else stdin)")
    ex.add_argument("--data", help="aclImdb root, split folder or .tar.gz: aggregate over its reviews instead "
                    "(default: explain the texts)")
    ex.add_argument("--split", default="test", help="with --data (default: test)")
    ex.add_argument("--limit", type=count(1), default=None, help="with --data: a seeded random slice of N reviews (default: all)")
    ex.add_argument("--top", type=count(1), default=30, help="with --data: words shown each way (default: 30)")
    ex.add_argument("--min-count", type=count(1), default=5, help="with --data: words read fewer times are left out (default: 5)")
    ex.add_argument("--encoding-errors", choices=["strict", "replace"], default=None, help=ENCODING_HELP)
    ex.add_argument("--steps", type=count(1), default=DEFAULT_STEPS,
                    help=f"Integrated Gradients steps (default: {DEFAULT_STEPS})")
    ex.add_argument("--threshold", type=probability, default=None, help=THRESHOLD_HELP)
    ex.add_argument("--html", help="write a self-contained HTML page here (default: none)")
    ex.add_argument("--png", help="write PNG pictures here, several texts: NAME-2.png, ... (default: none)")
    ex.add_argument("--json", action="store_true", help="print JSON (default: text)")

    en = sub.add_parser("encode", help="one thought vector per document of a split (.parquet or .npy + .jsonl), "
                        "and a 2-D map of them (HTML, PNG)")
    en.add_argument("model", help="model folder of a classifier")
    en.add_argument("--data", required=True, help="aclImdb root folder, split folder, or .tar.gz of either")
    en.add_argument("--split", default="test", help="split folder inside a root (default: test)")
    en.add_argument("--limit", type=count(1), default=None, help="a seeded random slice of N documents (default: all)")
    en.add_argument("--encoding-errors", choices=["strict", "replace"], default=None, help=ENCODING_HELP)
    en.add_argument("--out", help="vectors file: .parquet, or .npy with the other columns in .jsonl beside it (default: none)")
    en.add_argument("--map", help="write the 2-D map as a self-contained HTML page here (default: none)")
    en.add_argument("--png", help="write the 2-D map as PNG here (default: none)")
    en.add_argument("--projection", choices=METHODS, default="pca", help="2-D projection; umap needs the umap extra (default: pca)")
    en.add_argument("--batch-size", type=count(1), default=128, help="documents per forward pass (default: 128)")
    en.add_argument("--threshold", type=probability, default=None, help=THRESHOLD_HELP)
    add_device_option(ex, en)
    return {"explain": functools.partial(cmd_explain, read_texts=read_texts), "encode": cmd_encode}


def _check_outputs(command: str, paths: dict[str, str | None], suffixes: dict[str, tuple]) -> None:
    """Before any work: each given output's folder exists and its suffix is one this command writes."""
    for flag, path in paths.items():
        if path is None:
            continue
        if not Path(path).resolve().parent.is_dir():
            raise InputError(f"{flag} {path}: folder {Path(path).resolve().parent} does not exist")
        if Path(path).suffix not in suffixes[flag]:
            raise InputError(f"{flag} {path}: expected a file ending in {' or '.join(suffixes[flag])}")


def cmd_explain(args, read_texts) -> int:
    from loopynet.tasks.classification.api import Classifier

    _check_outputs("explain", {"--html": args.html, "--png": args.png}, {"--html": (".html", ".htm"), "--png": (".png",)})
    if args.data and (args.texts or args.file):
        raise UsageError("give texts (arguments, --file) or --data, not both")
    clf = Classifier.load(args.model, args.device)
    if args.data:
        return _explain_corpus(clf, args)
    texts = read_texts(args)
    explanations = clf.explain(texts, args.steps, args.threshold)
    if args.html:
        from loopynet.explain.page import explanation_page, write

        write(args.html, explanation_page(explanations, clf.class_names, Path(args.model).name))
    if args.png:
        from loopynet.explain import plots

        for i, e in enumerate(explanations):
            path = args.png if i == 0 else str(Path(args.png).with_name(f"{Path(args.png).stem}-{i + 1}.png"))
            plots.save(plots.explanation_figure(e, title=f"{Path(args.model).name}: P({clf.class_names[1]}) = "
                                                         f"{e['probability']:.3f}"), path)
    if args.json:
        from loopynet.explain.explanation import to_json

        print(json.dumps([to_json(e) for e in explanations], ensure_ascii=False))
        return 0
    for e in explanations:
        _print_explanation(e)
    return 0


def _print_explanation(e: dict) -> None:
    from loopynet.explain.explanation import strongest

    print(f"{e['label']}\t{e['probability']:.4f}\t{e['text'][:80]}")
    if e["note"]:
        print(f"  note: {e['note']}")
    positive, negative = strongest(e, 5)
    for name, rows in (("for", positive), ("against", negative)):
        words = ", ".join(f"{r['token']} {r['attribution']:+.3f}" for r in rows) or "-"
        print(f"  strongest {name}: {words}")


def _explain_corpus(clf, args) -> int:
    from tqdm import tqdm

    from loopynet.explain.corpus import corpus_attributions, top_words
    from loopynet.explain.network import Network, document_rows

    _, docs, _ = clf.read_split(args.data, args.split, args.encoding_errors, args.limit)
    rows = document_rows(docs, clf.maxlen)
    with tqdm(total=len(rows), desc="explain", unit="review", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        ids, values = corpus_attributions(Network(clf.model), rows, args.steps, progress=bar.update)
    top = top_words(ids, values, clf.vocab.words, args.top, args.min_count)
    top["description"] = (f"{len(rows):,} reviews of split {args.split!r} ({ids.size:,} tokens read); mean "
                          f"Integrated Gradients attribution to the logit per word, words read >= {args.min_count} times")
    if args.html:
        from loopynet.explain.page import corpus_page, write

        write(args.html, corpus_page(top, f"loopynet explain: {Path(args.model).name}, strongest words"))
    if args.png:
        from loopynet.explain import plots

        plots.save(plots.corpus_figure(top, f"{Path(args.model).name}: {len(rows):,} {args.split} reviews"), args.png)
    if args.json:
        print(json.dumps(top, ensure_ascii=False))
        return 0
    print(top["description"])
    print(f"{'positive':<20}{'mean':>9}{'count':>7}    {'negative':<20}{'mean':>9}{'count':>7}")
    for i in range(max(len(top["positive"]), len(top["negative"]))):
        cells = []
        for side in ("positive", "negative"):
            r = top[side][i] if i < len(top[side]) else None
            cells.append(f"{r['word']:<20}{r['mean']:>+9.4f}{r['count']:>7}" if r else " " * 36)
        print("    ".join(cells))
    return 0


def cmd_encode(args) -> int:
    from loopynet.tasks.classification.api import Classifier

    _check_outputs("encode", {"--out": args.out, "--map": args.map, "--png": args.png},
                   {"--out": (".parquet", ".npy"), "--map": (".html", ".htm"), "--png": (".png",)})
    if not (args.out or args.map or args.png):
        raise UsageError("nothing to write: give --out, --map and/or --png")
    clf = Classifier.load(args.model, args.device)
    threshold = clf.threshold["value"] if args.threshold is None else args.threshold
    from loopynet.explain.encode import read_vectors, write_vectors
    from loopynet.explain.network import Network, document_rows

    corpus, docs, _ = clf.read_split(args.data, args.split, args.encoding_errors, args.limit)
    rows = document_rows(docs, clf.maxlen)
    meta = {"id": list(corpus.paths), "label": [clf.class_names[int(y)] for y in docs.labels],
            "length": [len(r) for r in rows]}
    if args.out:
        info = write_vectors(args.out, Network(clf.model), rows, meta, clf.class_names, threshold, args.batch_size)
        print(f"wrote {info['documents']:,} vectors of {info['dims']} dims: {', '.join(info['files'])}")
    if args.map or args.png:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # one code path: the map reads what encode writes
            path = args.out or write_vectors(Path(tmp) / "vectors.npy", Network(clf.model), rows, meta,
                                             clf.class_names, threshold, args.batch_size)["files"][0]
            vectors, records = read_vectors(path)
        _write_map(args, clf, corpus, vectors, records)
    return 0


def _write_map(args, clf, corpus, vectors, records) -> None:
    from loopynet.explain import plots
    from loopynet.explain.page import map_page, write
    from loopynet.explain.projection import project

    points, info = project(vectors, args.projection)
    variance = info.get("explained_variance_ratio")
    title = (f"{Path(args.model).name}: thought vectors of {len(records):,} {args.split} documents, "
             f"{args.projection.upper()}" + (f" ({sum(variance):.0%} of the variance)" if variance else ""))
    if args.map:
        previews = [" ".join(corpus.tokens(i)[:25]) for i in range(len(records))]
        write(args.map, map_page(points, records, previews, clf.class_names, title))
    if args.png:
        plots.save(plots.map_figure(points, [r["label"] for r in records], [r["prediction"] for r in records],
                                    clf.class_names, title), args.png)
    print(f"map: {title}")
