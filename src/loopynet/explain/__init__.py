"""Examine what a trained classifier reads (NLP in Action 8.5.3: "you can use different methods to examine
the output of recurrent neural nets"): per-token evidence, hidden states, thought vectors, pictures, one page.

Symbols: B batch, T time, E embedding dims, D = units * directions, L tokens the model reads.

- `explanation.explain_texts`: for each text its tokens (in vocabulary / OOV / cut by maxlen), the
  probability, Integrated Gradients attributions (`attribution`), occlusion by deletion (`occlusion`), the
  probability of every prefix (`prefixes`), the hidden states (`hidden`) and the document vector;
- `encode`: one thought vector per document of a labelled split, streamed to .parquet or .npy + .jsonl;
- `projection`: 2-D maps of those vectors (PCA; UMAP with the `umap` extra);
- `corpus`: token evidence aggregated over many reviews;
- `page` (self-contained HTML) and `plots` (matplotlib PNG) draw the plain data the others return.
"""
