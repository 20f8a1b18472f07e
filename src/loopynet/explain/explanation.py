"""Explain single texts: every piece of per-token evidence of one prediction, as plain data.

`explain_texts(classifier, texts)` returns, per text, a dict (NumPy arrays over the L positions the model
reads, in order; `tokens` maps each Treebank token of the text to its position, or to none):

    text, tokens [{"token", "status": in|oov|cut, "position"}], note (what was not read, or None),
    probability P(class_names[1]), label, logit, baseline_logit (the all-zero-vector input), steps,
    attribution (L,)            Integrated Gradients + the n-gram shares: sums to logit - baseline_logit,
    attribution_network (L,)    the recurrent part's IG,  attribution_ngram (L,) the n-gram part's exact share
                                (zeros for models without one),  delta: the completeness error,
    occlusion (L,)              logit(text) - logit(text without the token),
    prefix_probability (L,)     P(first k tokens), k = 1..L,
    hidden (L', D), hidden_norm (L',)  the top recurrent layer's outputs at the L' = min(L, rnn_maxlen)
                                steps it reads (bidirectional: forward units first, then backward),
    directions, vector (D,)     the thought vector (see loopynet.explain.encode).
"""

from __future__ import annotations

import numpy as np

from loopynet.data.prepare import tokenizer_options
from loopynet.explain.attribution import DEFAULT_STEPS, attribute
from loopynet.explain.network import Network
from loopynet.explain.occlusion import occlusion
from loopynet.explain.prefixes import prefix_logits
from loopynet.explain.tokens import read_text, summary


def explain_texts(classifier, texts: list[str], steps: int = DEFAULT_STEPS, threshold: float = 0.5) -> list[dict]:
    """One explanation dict (see the module doc) per text of `texts`.

    Raises:
        TypeError: `texts` is one string or holds a non-string.
        CompletenessError (a ValueError): IG's completeness error exceeds its tolerance (use more steps).
    """
    from loopynet.data.tokenize import text_list

    network = Network(classifier.model)
    options = tokenizer_options(classifier.data_config)
    return [_explain_one(network, classifier, text, options, steps, threshold) for text in text_list(texts)]


def _explain_one(network: Network, classifier, text: str, options, steps: int, threshold: float) -> dict:
    read = read_text(text, classifier.vocab, options, network.maxlen)
    logit = float(network.logits([read.ids])[0])
    ids, lengths = network.rnn_batch([read.ids])
    ig = attribute(network, ids, lengths, steps)
    L, rnn_len = len(read.ids), int(lengths[0])
    from_network = np.zeros(L)
    from_network[:rnn_len] = ig.per_position[0, :rnn_len]
    from_ngram = network.ngram_shares(read.ids)
    out, vector = network.states(ids)
    hidden = out[0, :rnn_len].double().cpu().numpy()  # (L', D)
    probability = float(1.0 / (1.0 + np.exp(-logit)))
    return {
        "text": text, "tokens": read.tokens, "note": summary(read),
        "probability": probability, "label": classifier.class_names[int(probability >= threshold)],
        "logit": logit, "baseline_logit": network.baseline_logit(float(ig.baseline[0])), "steps": int(ig.steps[0]),
        "attribution": from_network + from_ngram, "attribution_network": from_network,
        "attribution_ngram": from_ngram, "delta": float(ig.delta[0]),
        "occlusion": occlusion(network, read.ids, read.rest, logit),
        "prefix_probability": 1.0 / (1.0 + np.exp(-prefix_logits(network, read.ids))),
        "hidden": hidden, "hidden_norm": np.linalg.norm(hidden, axis=1), "directions": network.directions,
        "vector": vector[0].double().cpu().numpy(),
    }


def strongest(explanation: dict, k: int = 10) -> tuple[list[dict], list[dict]]:
    """The k read tokens with the largest positive and the k with the most negative attribution:
    ([{"token", "position", "attribution", "occlusion"}], [...]), strongest first; zeros are left out."""
    rows = [{"token": t["token"], "position": t["position"],
             "attribution": float(explanation["attribution"][t["position"]]),
             "occlusion": float(explanation["occlusion"][t["position"]])}
            for t in explanation["tokens"] if t["position"] is not None]
    positive = sorted((r for r in rows if r["attribution"] > 0), key=lambda r: -r["attribution"])[:k]
    negative = sorted((r for r in rows if r["attribution"] < 0), key=lambda r: r["attribution"])[:k]
    return positive, negative


def to_json(explanation: dict) -> dict:
    """`explanation` with its arrays as lists (json.dumps-able)."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in explanation.items()}
