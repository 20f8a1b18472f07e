"""Recurrent classifiers beyond the book's SimpleRNN: GRU/LSTM cells, stacking, bidirectional,
padding-safe heads, stateful chunked long documents and fine-tuned word vectors.

Symbols: B batch, T time, E embedding dims, H units, D = H * directions, L layers.

Padding: documents are post-padded with id 0 (the zero vector), so a document's length is the number
of non-zero ids (`lengths`). The forward direction never sees padding before a real token. The
backward direction runs on each review reversed *within its length* (`reverse_within_length`: the
real tokens are reversed, the padding stays at the end) and its outputs are reversed back, so both
directions' outputs at real positions do not depend on how much padding follows (this is what
`pack_padded_sequence` gives, without its cost).

Heads (on the (B, T, D) outputs after dropout):
- "flatten": the book's Flatten -> Dense(1) over all T*D values (needs T == maxlen; padding positions
  count, as in the book);
- "last": the output at the last real token (bidirectional: forward at length-1 concatenated with
  backward at position 0, i.e. each direction's final state, Keras' default merge "concat");
- "mean" / "max": over the real positions only (with the compiled kernels, dropout and the max head run as one
  C pass, `models/max_pool.py`: the same distribution and maximum, other mask draws);
- "concat": "last", "max" and "mean" side by side (B, 3D) (concat pooling, Howard & Ruder 2018, "Universal
  Language Model Fine-tuning for Text Classification", sec. 3.3).
For last/mean/max/concat a review's prediction is identical whether it is padded to 400 or to its own length.

Word dropout (`word_dropout` p > 0, training only): before the first layer each real token of a review is
left out with probability p and the kept ones close up (`drop_words`; Iyyer et al. 2015, "Deep Unordered
Composition Rivals Syntactic Methods for Text Classification", sec. 3.1), so the network reads a shorter
review; evaluation reads every token.
With `mask_zero=False` (Keras' semantics without a mask, used for imported Keras models) every one of
the T steps counts as a token: "last" reads step T-1, mean/max pool all T steps and the backward
direction runs over the whole padded sequence reversed; predictions then depend on the padding, so
inputs are always padded to maxlen.

Parameter conventions: cell "rnn" is loopynet's Keras SimpleRNN (one bias: E*H + H*H + H per direction
and layer); "gru" and "lstm" are `torch.nn.GRU` / `torch.nn.LSTM` (PyTorch/cuDNN conventions: two bias
vectors b_ih and b_hh, so GRU has 3*(E*H + H*H + 2H) and LSTM 4*(E*H + H*H + 2H) per direction and
layer; Keras' GRU(reset_after=True) matches GRU's count, Keras' LSTM has 4H fewer).
The second and later layers take E = D of the layer below. `dropout` is applied between layers and
after the last one (before the head).

Stateful (book 8.5.1): with `stateful=True` and `chunk_len=K` each batch of documents is run K tokens
at a time; the state at the end of a chunk is the initial state of the next chunk of the same
documents (detached while training: truncated BPTT at chunk borders) and every batch starts from
zeros (reset between documents). Any batch size works (no fixed batch, no `reset_states`). The head
sees the outputs of all chunks ("last": the state after the document's last token, in its last chunk),
so stateful inference equals one pass over the whole document. Stateful runs are unidirectional and
need a last/mean/max head. `forward` pools each chunk's share of the head's features inside the chunk
(`pool_part`: the last real step if it lies in the chunk, the chunk's sum or maximum; dropout drawn per
chunk) and recomputes the chunk in the backward pass (`recompute`), so a training step holds
O(B x K x D) activations plus O(B x D) per chunk, not the (B, T, D) outputs of the whole document.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from loopynet.config import ModelConfig, check_model
from loopynet.models import cells, max_pool
from loopynet.models.base import Network
from loopynet.models.simple_rnn import SimpleRNN, glorot_uniform_


def lengths_of(ids: torch.Tensor) -> torch.Tensor:
    """(B,) number of real (non-zero) ids of each post-padded row."""
    return (ids != 0).sum(1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, ...) with each row's first lengths[b] steps reversed and its padding left in place.

    Its own inverse. Equivalent loop: `y[b, :n] = x[b, :n].flip(0); y[b, n:] = x[b, n:]`, n = lengths[b].
    """
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    n = lengths.view(B, 1)
    index = torch.where(t < n, n - 1 - t, t)
    if x.dim() > 2:
        index = index.view(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class Direction(nn.Module):
    """One direction of one layer: a SimpleRNN (Keras, one bias) or a torch.nn.GRU/LSTM.

    run(x (B, T, I), state) -> (out (B, T, H), state); state is None (zeros), h (B, H) for rnn,
    h (1, B, H) for gru, (h, c) for lstm. On the CPU a GRU/LSTM runs on the fused C recurrence
    (models/cells.py) when the kernels are available, else on the torch module itself (same parameters).
    """

    def __init__(self, cell: str, input_dims: int, units: int, generator: torch.Generator):
        super().__init__()
        self.cell = cell
        if cell == "rnn":
            self.rnn = SimpleRNN(input_dims, units, generator)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=generator)))
                self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(input_dims, units, batch_first=True)

    def run(self, x: torch.Tensor, state=None):
        kernels = self.fused(x)
        if kernels is None:
            return self.rnn(x, state)
        return cells.run(self.cell, cells.weights(self.rnn), kernels, x=x, state=state)

    def run_ids(self, ids: torch.Tensor, table: torch.Tensor, state=None):
        """`run(table[ids], state)`, projecting each distinct token once. A table that requires grad gets a
        sparse gradient without row 0 (padding), as `F.embedding(ids, table, padding_idx=0, sparse=True)`."""
        if self.cell == "rnn" and not table.requires_grad:
            return self.rnn.forward_ids(ids, table, state)
        kernels = self.fused(table) if ids.shape[1] else None
        if kernels is None:
            sparse = table.requires_grad
            return self.run(F.embedding(ids, table, padding_idx=0 if sparse else None, sparse=sparse), state)
        return cells.run(self.cell, cells.weights(self.rnn), kernels, ids=ids, table=table, state=state)

    def fused(self, like: torch.Tensor):
        """The compiled kernels when this GRU/LSTM runs on them for inputs like `like` (models/cells.py)."""
        if self.cell == "rnn" or (like.dim() == 3 and like.shape[1] == 0):
            return None
        return cells.fused(self.rnn, like)


def recompute(function, *args):
    """`function(*args)` keeping only its inputs and outputs for the backward pass, which runs it again
    to rebuild the activations inside (gradient checkpointing, Chen et al. 2016, "Training Deep Nets
    with Sublinear Memory Cost"; `torch.utils.checkpoint`, non-reentrant, with the RNG state restored so
    dropout draws the same masks: the gradients are those of the plain call). Without autograd
    (`torch.no_grad`) it is the plain call."""
    if not torch.is_grad_enabled():
        return function(*args)
    return checkpoint(function, *args, use_reentrant=False)


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def own_state(state):
    """A recurrent state (h, or (h, c)) as tensors with their own storage: the runs return h_n as a view of
    the (T, B, H) outputs, which a state carried to the next chunk would otherwise keep alive."""
    if isinstance(state, tuple):
        return tuple(s.clone() for s in state)
    return state.clone()


class RecurrentClassifier(Network):
    """Word vectors -> L recurrent layers (optionally bidirectional) -> dropout -> head -> Dense(1) logit.

    forward(ids (B, T) int64, post-padded with 0) -> logits (B,). T must be config.maxlen only for the
    flatten head. With `train_embeddings` the (V, E) table `embeddings` is a Parameter whose gradient
    is sparse (only the rows a batch uses; row 0, padding, stays zero): `sparse_parameters()` lists it
    for `torch.optim.SparseAdam` (see `loopynet.train.loop.make_optimizer`). Otherwise it is a frozen
    buffer, as in the book.
    """

    def __init__(self, config: ModelConfig, embeddings: torch.Tensor, seed: int = 0):
        super().__init__()
        check_model(config)
        if embeddings.shape[1] != config.embedding_dims:
            raise ValueError(f"embedding matrix has {embeddings.shape[1]} dims, config says embedding_dims="
                             f"{config.embedding_dims}")
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        if config.train_embeddings:
            self.embeddings = nn.Parameter(embeddings.float().clone())
        else:
            self.register_buffer("embeddings", embeddings.float(), persistent=True)
        directions = 2 if config.bidirectional else 1
        self.layers = nn.ModuleList()
        input_dims = config.embedding_dims
        for _ in range(config.layers):
            self.layers.append(nn.ModuleList(Direction(config.cell, input_dims, config.units, generator)
                                             for _ in range(directions)))
            input_dims = config.units * directions
        self.dropout = nn.Dropout(config.dropout)
        features = input_dims * head_width(config)
        self.dense_kernel = nn.Parameter(glorot_uniform_(torch.empty(features, 1), generator))
        self.dense_bias = nn.Parameter(torch.zeros(1))

    @property
    def padding_safe(self) -> bool:
        """Whether trailing padding leaves the logits unchanged (heads last/mean/max, padding masked)."""
        return self.config.head != "flatten" and self.config.mask_zero

    def sparse_parameters(self) -> list[nn.Parameter]:
        """Parameters whose gradients are sparse (the fine-tuned embedding table), else []."""
        return [self.embeddings] if self.config.train_embeddings else []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> logits (B,)."""
        ids = ids.long()
        if self.training and self.config.word_dropout > 0:
            ids = drop_words(ids, self.config.word_dropout, trim=self.padding_safe)
        return self._logits(ids, None, self.steps_read(lengths_of(ids), ids.shape[1]))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the word vectors (B, T, E) the first layer reads (zeros at padding)."""
        return F.embedding(ids.long(), self.embeddings)

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, E) input vectors (e.g. `embed(ids)`, or points between them and a baseline for
        integrated gradients), lengths (B,) real steps of each row -> logits (B,); = forward(ids) for
        x = embed(ids)."""
        return self._logits(None, x, self.steps_read(lengths, x.shape[1]))

    def _logits(self, ids: torch.Tensor | None, x: torch.Tensor | None, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of token ids (B, T) or, with ids None, of input vectors x (B, T, E); lengths (B,) as
        `steps_read` gives them. A stateful network pools chunk by chunk (`_stateful`), never holding the
        (B, T, D) outputs."""
        if self.config.stateful:
            return self.classify(self._stateful(ids, x, lengths, pooled=True))
        out = self._encode(ids, x, lengths)
        kernels = max_pool.fused_kernels(out) if self.config.head == "max" else None
        if kernels is not None:  # check_model keeps dropout in [0, 1)
            return self.classify(max_pool.dropout_max_pool(out, lengths, self.dropout.p * self.training, kernels))
        return self.head(self.dropout(out), lengths)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) -> (outputs (B, T, D) of the top layer before dropout, lengths (B,))."""
        ids = ids.long()
        lengths = self.steps_read(lengths_of(ids), ids.shape[1])
        return self._encode(ids, None, lengths), lengths

    def steps_read(self, lengths: torch.Tensor, T: int) -> torch.Tensor:
        """(B,) steps each row's heads and backward direction read: its real tokens (`lengths`), or all T
        steps with mask_zero=False (Keras without a mask)."""
        return lengths if self.config.mask_zero else torch.full_like(lengths, T)

    def _encode(self, ids: torch.Tensor | None, x: torch.Tensor | None, lengths: torch.Tensor) -> torch.Tensor:
        """Top-layer outputs (B, T, D) before dropout, of token ids (B, T) or, with ids None, of input vectors
        x (B, T, E)."""
        if self.config.stateful:
            return self._stateful(ids, x, lengths, pooled=False)
        for depth, layer in enumerate(self.layers):
            if depth:
                ids, x = None, self.dropout(x)
            steps = (ids if ids is not None else x).shape[1]
            kernels = layer[0].fused(self.embeddings if ids is not None else x) if steps else None
            if kernels is not None:  # both directions in one call, the backward one reversed inside the kernel
                params = [w for cell in layer for w in cells.weights(cell.rnn)]
                inputs = {"ids": ids, "table": self.embeddings} if ids is not None else {"x": x}
                x, _ = cells.run(self.config.cell, params, kernels, lengths=lengths, **inputs)
                continue
            outs = []
            for direction, cell in enumerate(layer):
                if direction == 0:
                    out, _ = self._run(cell, ids, x, None)
                else:
                    rev_ids = None if ids is None else reverse_within_length(ids, lengths)
                    rev_x = None if x is None else reverse_within_length(x, lengths)
                    out, _ = self._run(cell, rev_ids, rev_x, None)
                    out = reverse_within_length(out, lengths)
                outs.append(out)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        return x

    def _run(self, cell: Direction, ids, x, state):
        """One direction over token ids (the first layer) or, with ids None, over input vectors x."""
        if ids is None:
            return cell.run(x, state)
        return cell.run_ids(ids, self.embeddings, state)

    def _stateful(self, ids: torch.Tensor | None, x: torch.Tensor | None, lengths: torch.Tensor,
                  pooled: bool) -> torch.Tensor:
        """Run the stack chunk by chunk over ids (B, T) or input vectors x (B, T, E), carrying each layer's
        state; lengths (B,) real steps per row. Returns the top-layer outputs (B, T, H) or, pooled, the
        head's features (B, H) (after dropout, as `head`). Each chunk is recomputed in the backward pass
        (`recompute`): a pooled training step keeps per chunk only its inputs (views of ids or x), the
        layers' states at its start and its (B, H) share of the features, so its memory grows with
        batch x chunk_len, not with the longest document."""
        K = self.config.chunk_len
        source = ids if ids is not None else x
        states = [None] * len(self.layers)
        parts = []
        for start in range(0, source.shape[1], K):
            chunk_ids = None if ids is None else ids[:, start:start + K]
            chunk_x = None if x is None else x[:, start:start + K]
            if self.training:
                states = [detach_state(state) for state in states]
            part, states = recompute(self._chunk, chunk_ids, chunk_x, states, lengths - start if pooled else None)
            parts.append(part)
        if not pooled:
            if not parts:  # T == 0
                return source.new_zeros(source.shape[0], 0, self.config.units, dtype=self.embeddings.dtype)
            return torch.cat(parts, dim=1)
        if not parts:
            return source.new_zeros(source.shape[0], self.config.units, dtype=self.embeddings.dtype)
        shares = torch.stack(parts)  # (chunks, B, H)
        return finish_pool(shares.amax(0) if self.config.head == "max" else shares.sum(0), lengths, self.config.head)

    def _chunk(self, ids: torch.Tensor | None, x: torch.Tensor | None, states: list,
               left: torch.Tensor | None) -> tuple[torch.Tensor, list]:
        """One chunk through the stack: ids (B, K) or x (B, K, E) and each layer's initial state ->
        (top-layer outputs (B, K, H) or, given left (B,) (each row's real steps from the chunk's start on),
        the chunk's share of the head's features after dropout (B, H) (`pool_part`); each layer's final
        state, a tensor of its own (not a view that would keep the chunk's outputs alive))."""
        finals = []
        for depth, layer in enumerate(self.layers):
            if depth:
                ids, x = None, self.dropout(x)
            x, state = self._run(layer[0], ids, x, states[depth])
            finals.append(own_state(state))
        if left is None:
            return x, finals
        return pool_part(self.dropout(x), left, self.config.head), finals

    def head(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """out (B, T, D) -> logits (B,) with the configured head."""
        B, T, D = out.shape
        if self.config.head == "flatten" and T * D != self.dense_kernel.shape[0]:
            raise ValueError(f"the flatten head was built for maxlen={self.config.maxlen} steps but the "
                             f"input has {T}; pad or truncate ids to the model's maxlen")
        return self.classify(pool(out, lengths, self.config.head, self.config.bidirectional))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The head's features (B, F) -> logits (B,) (the Dense(1) layer)."""
        return (features @ self.dense_kernel + self.dense_bias)[:, 0]

    def document_vector(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """out (B, T, D) top-layer outputs -> (B, D) one vector per document: the pooled vector of a mean/max
        head ((B, 3D) of a concat head), else the last real state (bidirectional: forward h_T with backward h_1),
        never the flatten input."""
        kind = self.config.head if self.config.head in ("mean", "max", "concat") else "last"
        return pool(out, lengths, kind, self.config.bidirectional)


def head_width(config: ModelConfig) -> int:
    """Features of the head per top-layer feature: maxlen (flatten), 3 (concat) or 1."""
    return {"flatten": config.maxlen, "concat": 3}.get(config.head, 1)


def drop_words(ids: torch.Tensor, p: float, trim: bool = False) -> torch.Tensor:
    """ids (B, T) post-padded with 0 -> (B, T) ids with each real (non-zero) id left out with probability p
    (torch's global generator, as dropout) and the kept ones moved up in their order, zeros after; with `trim`
    the columns no row uses any more are cut off (at least one kept). Word dropout, Iyyer et al. 2015, sec. 3.1."""
    keep = (ids != 0) & (torch.rand(ids.shape, device=ids.device) >= p)
    rows = torch.arange(ids.shape[0], device=ids.device).view(-1, 1).expand_as(ids)
    out = torch.zeros_like(ids)
    out[rows[keep], keep.cumsum(1)[keep] - 1] = ids[keep]
    if not trim or not keep.numel():
        return out
    return out[:, : max(1, int(keep.sum(1).max()))]


def pool(out: torch.Tensor, lengths: torch.Tensor, kind: str, bidirectional: bool = False) -> torch.Tensor:
    """out (B, T, D) -> features of a head `kind`: flatten (B, T*D); last, mean, max (B, D) over the real
    positions (lengths (B,)); concat (B, 3D): last, max and mean side by side; a row without real positions
    gives zeros. Bidirectional "last" is the forward half at position length-1 concatenated with the backward
    half at position 0 (each direction's final state)."""
    B, T, D = out.shape
    if kind == "flatten":
        return out.reshape(B, T * D)
    if kind == "concat":
        return torch.cat([pool(out, lengths, part, bidirectional) for part in ("last", "max", "mean")], dim=1)
    if not T:
        return out.new_zeros(B, D)
    features = finish_pool(pool_part(out, lengths, kind), lengths, kind)
    if kind == "last" and bidirectional:
        H = D // 2  # backward direction: its final state is at position 0
        features = torch.cat([features[:, :H], out[:, 0, H:] * (lengths > 0).view(B, 1).to(out.dtype)], dim=1)
    return features


def pool_part(out: torch.Tensor, left: torch.Tensor, kind: str) -> torch.Tensor:
    """One stretch of K >= 1 steps' share of a last/mean/max head: out (B, K, D) and left (B,), each row's
    real steps from the stretch's first step on (<= 0: none here; > K: more follow) -> (B, D): "last" the
    output at the row's last real step if it lies here, else zeros; "mean" the sum over the real steps here;
    "max" their maximum (-inf where none). Shares of consecutive stretches combine by sum (last, mean) or
    maximum (max), then `finish_pool`."""
    B, K, D = out.shape
    if kind == "last":
        here = ((left >= 1) & (left <= K)).view(B, 1).to(out.dtype)
        index = (left - 1).clamp(0, K - 1).view(B, 1, 1).expand(B, 1, D)
        return out.gather(1, index)[:, 0] * here
    real = (torch.arange(K, device=out.device).view(1, K) < left.view(B, 1)).unsqueeze(2)  # (B, K, 1)
    if kind == "mean":
        return (out * real).sum(1)
    return out.masked_fill(~real, float("-inf")).amax(1)


def finish_pool(shares: torch.Tensor, lengths: torch.Tensor, kind: str) -> torch.Tensor:
    """The combined `pool_part` shares (B, D) of a whole document -> the head's features (B, D): the mean
    divides by the length; a row without real steps gives zeros."""
    B = lengths.shape[0]
    if kind == "mean":
        return shares / lengths.clamp(min=1).view(B, 1).to(shares.dtype)
    if kind == "max":
        return torch.where(lengths.view(B, 1) > 0, shares, torch.zeros_like(shares))
    return shares


def parameter_count(config: ModelConfig) -> int:
    """Trainable weights of `RecurrentClassifier(config)` without building it (embedding table excluded)."""
    E, H, D = config.embedding_dims, config.units, config.units * (2 if config.bidirectional else 1)
    total = 0
    for depth in range(config.layers):
        inputs = E if depth == 0 else D
        per = {"rnn": inputs * H + H * H + H, "gru": 3 * (inputs * H + H * H + 2 * H),
               "lstm": 4 * (inputs * H + H * H + 2 * H)}[config.cell]
        total += per * (2 if config.bidirectional else 1)
    return total + D * head_width(config) + 1


def describe(model: nn.Module) -> str:
    """A parameter table of a (non-book) classifier: each tensor's shape and trainable count."""
    config = model.config
    header = (f"cell={config.cell} layers={config.layers} bidirectional={config.bidirectional} head={config.head} "
              f"units={config.units} stateful={config.stateful} chunk_len={config.chunk_len} "
              f"train_embeddings={config.train_embeddings} ngram={config.ngram} mask_zero={config.mask_zero} "
              f"word_dropout={config.word_dropout}")
    lines = [header, "-" * 65]
    trainable = frozen = 0
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        is_param = isinstance(tensor, nn.Parameter) and tensor.requires_grad
        lines.append(f"{name:<40}{tuple(tensor.shape)!s:<16}{tensor.numel() if is_param else 0:>9,}")
        trainable += tensor.numel() if is_param else 0
        frozen += 0 if is_param else tensor.numel()
    lines += ["-" * 65, f"Trainable params: {trainable:,}", f"Non-trainable values (buffers): {frozen:,}"]
    return "\n".join(lines)
