"""An ensemble of trained CoNLL-2003 taggers (issue 19, part 2): CRF scores averaged.

Each sentence's tag sequence maximises the mean of the N taggers' CRF scores: the emissions (T, K) and
the start / transition / end scores are averaged over the taggers, then decoded by the scheme-constrained
Viterbi (`loopynet.models.tagger.constrained_viterbi`); argmax of the mean sequence score = argmax of the sum,
i.e. a product of the N CRFs' distributions (unnormalised). The taggers must share their tag names and scheme.
Prints validation (and with --test, test) entity F1 of each tagger and of the ensemble; writes the JSON.

    .venv/bin/python benchmarks/tagger_ensemble.py runs/tagger/conll50-s0 runs/tagger/conll50-s1 runs/tagger/conll50-s2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from loopynet.data.conll import read_tagged, with_scheme
from loopynet.io.atomic import atomic_file
from loopynet.models.tagger import constrained_viterbi
from loopynet.tasks.tagging.api import Tagger
from loopynet.tasks.tagging.metrics import tag_metrics
from loopynet.tasks.tagging.encoding import encode_sentences, pad_batch

RESULTS = Path(__file__).resolve().parent / "results" / "tagger_ensemble.json"
TYPES = ("PER", "ORG", "LOC", "MISC")


@torch.no_grad()
def ensemble_predictions(taggers: list[Tagger], sentences, batch_size: int = 256) -> list[list[int]]:
    """Tag ids per sentence (document order) maximising the taggers' mean CRF score."""
    docs = [encode_sentences(sentences, t.words, t.chars, t.tag_names, t.data_config.max_word_len) for t in taggers]
    models = [t.model.eval() for t in taggers]

    def mean(name):
        return torch.stack([getattr(m.crf, name) for m in models]).mean(0)

    def forbid(allowed):
        return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))

    first = models[0]
    start = mean("start_transitions") + forbid(first.allowed_start)
    transitions = mean("transitions") + forbid(first.allowed_transitions)
    end = mean("end_transitions") + forbid(first.allowed_end)
    order = np.argsort([len(s.tokens) for s in sentences], kind="stable")
    out: list[list[int] | None] = [None] * len(sentences)
    for begin in range(0, len(order), batch_size):
        idx = order[begin: begin + batch_size]
        emissions = []
        for model, d in zip(models, docs):
            words, cases, chars, lengths, _ = (torch.from_numpy(a) for a in pad_batch(d, idx))
            emissions.append(model(words, cases, chars, lengths))
        for i, path in zip(idx, constrained_viterbi(torch.stack(emissions).mean(0), lengths, start, transitions, end)):
            out[i] = path
    return out


def scores(metrics: dict) -> dict:
    return {"f1": metrics["f1"], "strict_f1": metrics["strict"]["f1"],
            "per_type": {t: metrics["per_type"][t]["f1"] for t in TYPES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with model/) of benchmarks/tagger_run.sh")
    parser.add_argument("--test", action="store_true", help="also the test split (once, for the final recipe)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    taggers = [Tagger.load(r / "model", device="cpu") for r in args.runs]
    if any(t.tag_names != taggers[0].tag_names for t in taggers):
        raise SystemExit("the taggers have different tag names")
    result = {"runs": [r.name for r in args.runs], "splits": {}}
    for split in ["valid"] + (["test"] if args.test else []):
        config = taggers[0].data_config
        sentences = with_scheme(read_tagged(config.data, split, config.input_scheme)[0], config.tag_scheme)
        start = time.perf_counter()
        predictions = ensemble_predictions(taggers, sentences)
        seconds = time.perf_counter() - start
        tag_id = {t: i for i, t in enumerate(taggers[0].tag_names)}
        gold = [[tag_id[t] for t in s.tags] for s in sentences]
        metrics = tag_metrics(gold, predictions, taggers[0].tag_names)
        singles = [t.evaluate(split)["f1"] for t in taggers]
        result["splits"][split] = {"ensemble": scores(metrics), "single_f1": singles, "ensemble_seconds": seconds}
        print(f"{split}: ensemble F1 {metrics['f1']:.4f} (strict {metrics['strict']['f1']:.4f}; "
              + ", ".join(f"{t} {metrics['per_type'][t]['f1']:.4f}" for t in TYPES)
              + f"); single taggers {', '.join(f'{f:.4f}' for f in singles)}; {seconds:.1f} s")
    with atomic_file(args.out, "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
