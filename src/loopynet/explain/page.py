"""Self-contained HTML pages: one file, no network access needed to open it (styles inline, pictures as
data: URIs, no scripts; hovering uses the browser's own `title` tooltips).

- `explanation_page`: per text the probability and label, the tokens coloured by evidence (blue positive,
  red negative, grey not read; the numbers on hover), a legend, P(prefix) and the hidden-state heatmap,
  and the ten strongest tokens each way;
- `map_page`: the 2-D map of thought vectors as SVG, one circle per document coloured by true label,
  misclassified ones drawn as crosses, each with the review's first words and probability on hover;
- `corpus_page`: the corpus-level table of the strongest words and its bar chart.
"""

from __future__ import annotations

import base64
import html
import os

import numpy as np

from loopynet.explain import plots
from loopynet.explain.explanation import strongest
from loopynet.io.atomic import atomic_file

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
.tokens { line-height: 1.9; font-size: 15px; border: 1px solid #ddd; padding: 0.6em; }
.tok { padding: 1px 2px; border-radius: 3px; }
.tok.oov, .tok.cut { color: #777; background: #e6e6e6; font-style: italic; }
.tok.cut { text-decoration: line-through; }
.legend span { padding: 2px 8px; margin-right: 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.5em 1em 0.5em 0; display: inline-table; vertical-align: top; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; font-size: 13px; }
td:first-child, th:first-child { text-align: left; }
.note { color: #a40; }
img { max-width: 100%; }
section { margin-bottom: 2.5em; }
"""


def _document(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _rgb(colour) -> str:
    r, g, b = (int(round(255 * c)) for c in colour)
    return f"rgb({r},{g},{b})"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _legend(class_names: list[str]) -> str:
    return ('<p class="legend">evidence: '
            f'<span style="background:{_rgb(plots.token_colour(-1, 1))};color:white">for {html.escape(class_names[0])}</span>'
            f'<span style="background:{_rgb(plots.token_colour(0, 1))}">none</span>'
            f'<span style="background:{_rgb(plots.token_colour(1, 1))};color:white">for {html.escape(class_names[1])}</span>'
            '<span class="tok oov">not read (out of vocabulary)</span> <span class="tok cut">cut by maxlen</span>'
            ' &mdash; hover a token for its numbers</p>')


def _token_span(token: dict, e: dict, scale: float) -> str:
    text = html.escape(token["token"])
    if token["status"] != "in":
        why = "out of vocabulary: no vector, not read" if token["status"] == "oov" else "after maxlen: not read"
        return f'<span class="tok {token["status"]}" title="{why}">{text}</span>'
    i = token["position"]
    tip = (f"position {i}: attribution {e['attribution'][i]:+.4f} (network {e['attribution_network'][i]:+.4f}, "
           f"n-gram {e['attribution_ngram'][i]:+.4f}); deleting it changes the logit by {-e['occlusion'][i]:+.4f}; "
           f"P(first {i + 1} tokens) {e['prefix_probability'][i]:.3f}")
    colour = plots.token_colour(e["attribution"][i], scale)
    ink = "white" if abs(e["attribution"][i]) > 0.6 * scale else "black"
    return (f'<span class="tok in" data-position="{i}" data-attribution="{e["attribution"][i]:.6g}" '
            f'style="background:{_rgb(colour)};color:{ink}" title="{html.escape(tip)}">{text}</span>')


def _strongest_tables(e: dict) -> str:
    parts = []
    for name, rows in zip(("positive", "negative"), strongest(e)):
        cells = "".join(f"<tr><td>{html.escape(r['token'])}</td><td>{r['position']}</td><td>{r['attribution']:+.4f}</td>"
                        f"<td>{r['occlusion']:+.4f}</td></tr>" for r in rows)
        parts.append(f"<table><caption>ten strongest {name}</caption><tr><th>token</th><th>position</th>"
                     f"<th>attribution</th><th>occlusion</th></tr>{cells}</table>")
    return "".join(parts)


def explanation_section(e: dict, class_names: list[str], number: int = 1) -> str:
    """One text's part of the page."""
    scale = plots.scale_of(e["attribution"])
    spans = " ".join(_token_span(t, e, scale) for t in e["tokens"]) or "<em>(no tokens)</em>"
    note = f'<p class="note">{html.escape(e["note"])}</p>' if e["note"] else ""
    figure = plots.explanation_figure(e, with_tokens=False)
    return (f'<section id="text-{number}"><h2>text {number}: {html.escape(e["label"])}, '
            f'P({html.escape(class_names[1])}) = {e["probability"]:.4f}</h2>{note}'
            f'<div class="tokens">{spans}</div>'
            f'<p>logit {e["logit"]:+.4f} = baseline (all-zero input) {e["baseline_logit"]:+.4f} + the attributions, '
            f'sum {float(np.sum(e["attribution"])):+.4f} (Integrated Gradients, {e["steps"]} steps; completeness error '
            f'{e["delta"]:+.2e})</p>{_strongest_tables(e)}'
            f'{_image(plots.png_bytes(figure), "P(prefix), hidden-state heatmap and norm of h_t")}</section>')


def explanation_page(explanations: list[dict], class_names: list[str], model_name: str) -> str:
    """The HTML page of `explain_texts`' output."""
    body = _legend(class_names) + "".join(explanation_section(e, class_names, i + 1) for i, e in enumerate(explanations))
    return _document(f"loopynet explain: {model_name}", body)


def map_page(points: np.ndarray, records: list[dict], previews: list[str], class_names: list[str], title: str,
             size: int = 720) -> str:
    """An SVG map: records [{"label", "prediction", "probability"}] and previews (first words) per point."""
    pad = 20
    low, high = points.min(0), points.max(0)
    span = np.where(high > low, high - low, 1.0)
    xy = pad + (points - low) / span * (size - 2 * pad)
    colours = dict(zip(class_names, ("#d62728", "#1f77b4")))
    marks = []
    for (x, y), r, preview in zip(xy, records, previews):
        tip = html.escape(f"{preview} ... | true {r['label']}, predicted {r['prediction']}, P = {r['probability']:.3f}")
        y = size - y
        if r["label"] == r["prediction"]:
            marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colours[r["label"]]}" fill-opacity="0.55">'
                         f"<title>{tip}</title></circle>")
        else:
            marks.append(f'<path d="M{x - 3:.1f},{y - 3:.1f}l6,6m0,-6l-6,6" stroke="{colours[r["label"]]}" '
                         f'stroke-width="1.5"><title>{tip}</title></path>')
    legend = " ".join(f'<span style="color:{c}">&#9679; {html.escape(n)}</span>' for n, c in colours.items())
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
           f'style="border:1px solid #ccc">{"".join(marks)}</svg>')
    return _document(title, f"<p>{legend} &nbsp; &times; misclassified &mdash; hover a point for the review</p>{svg}")


def corpus_page(top: dict, title: str) -> str:
    """The corpus-level table (strongest words each way, mean attribution and count) and its bar chart."""
    tables = []
    for side in ("positive", "negative"):
        rows = "".join(f"<tr><td>{html.escape(r['word'])}</td><td>{r['mean']:+.4f}</td><td>{r['count']}</td></tr>"
                       for r in top[side])
        tables.append(f"<table><caption>strongest {side} evidence</caption><tr><th>word</th>"
                      f"<th>mean attribution</th><th>count</th></tr>{rows}</table>")
    figure = plots.png_bytes(plots.corpus_figure(top, title))
    return _document(title, f"<p>{html.escape(top['description'])}</p>{''.join(tables)}{_image(figure, title)}")


def write(path: str | os.PathLike, page: str) -> None:
    """Write an HTML page atomically (UTF-8)."""
    with atomic_file(path, "w") as f:
        f.write(page)
