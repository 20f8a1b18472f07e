"""A recurrent sequence tagger: a label at every time step (NLP in Action 8.1.2.2).

    word vectors (+ casing embedding) (+ character CNN and/or character BiLSTM)
    ->  Dropout -> (bi)directional RNN/GRU/LSTM, return_sequences (x layers, Dropout between them)
    ->  Dropout -> Dense(num_tags) at every step (Keras' TimeDistributed(Dense))  ->  softmax or a CRF

Axes: B batch, T time (tokens), L characters per token, E word-vector dims, H units per direction,
K tags, C character-embedding dims, U character-LSTM units per direction. Padding is at the end of each
sentence; `lengths` (B,) says how many steps are real. Padded steps never reach a real step's output
(the backward direction reverses each sentence inside its length) and are masked out of the loss, so
padding changes neither loss nor predictions.

The loss is summed over all real tokens and divided by the number of sentences B: each step's error
is backpropagated through all earlier steps, the corrections are summed, and the optimizer applies
the sum once per batch (the chapter's rule; with the `rnn` cell this equals
`loopynet.models.reference.every_step_loss_and_grads` generalised to softmax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from loopynet.config import CASINGS, ConfigError, TaggerConfig, check_tagger
from loopynet.models import cells
from loopynet.models.base import Network
from loopynet.models.recurrent_classifier import reverse_within_length
from loopynet.models.simple_rnn import SimpleRNN


def char_cnn_on(config: TaggerConfig) -> bool:
    """Whether the network has the character CNN (`char_encoder` cnn or both, `char_filters` > 0)."""
    return config.char_encoder in ("cnn", "both") and config.char_filters > 0


def char_lstm_on(config: TaggerConfig) -> bool:
    """Whether the network has the character BiLSTM (`char_encoder` lstm or both, `char_units` > 0)."""
    return config.char_encoder in ("lstm", "both") and config.char_units > 0


def recurrent_outputs(rnn: nn.LSTM | nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, features), lengths (B,) int64 >= 1 -> (B, T, D*H): a one-layer torch.nn.LSTM/GRU's outputs as
    the packed module gives them (the backward direction reversed within each row's length, zeros at padded
    steps), on loopynet's fused C recurrence where it applies (`cells.fused`), else on the packed module."""
    T = x.shape[1]
    if (kernels := cells.fused(rnn, x) if T else None) is not None:
        cell = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
        out, _ = cells.run(cell, cells.weights(rnn), kernels, x=x, lengths=lengths)
        return out * SequenceTagger.mask(lengths, T).unsqueeze(2).to(out.dtype)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=T)[0]


def frozen_embedding(table: torch.Tensor) -> nn.Embedding:
    """An nn.Embedding over `table` (vocab, E) whose weight is a buffer, not a parameter: the optimizer, gradient
    clipping and the weight average (`torch.optim.swa_utils.AveragedModel`, which averages every parameter,
    frozen ones too) never touch it. Its state_dict key stays `weight`, so saved folders load unchanged. On the
    350-d concatenated table (82,970 rows) averaging the frozen table cost ~0.24 s of CPU per batch."""
    embedding = nn.Embedding.from_pretrained(table.clone(), freeze=True, padding_idx=0)
    weight = embedding.weight.detach()
    del embedding.weight
    embedding.register_buffer("weight", weight)
    return embedding


class VariationalDropout(nn.Module):
    """Dropout with one mask per sentence and feature, the same at every time step (Gal & Ghahramani 2016,
    "A theoretically grounded application of dropout in recurrent neural networks"): x (B, T, F) ->
    x * mask (B, 1, F) / (1 - p) in training, x in eval mode. Drawn from torch's global generator, as
    nn.Dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2], dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class SequenceTagger(Network):
    """Emission scores (B, T, K) for every step; `loss` and `decode` on top (softmax or CRF)."""

    def __init__(self, config: TaggerConfig, embeddings: torch.Tensor | None = None, seed: int = 0):
        super().__init__()
        check_tagger(config)
        self.config = config
        torch.manual_seed(seed)  # torch's RNN, Conv1d and Linear modules take no generator
        gen = torch.Generator().manual_seed(seed)
        table = embeddings if embeddings is not None else torch.zeros(config.vocab_size, config.embedding_dims)
        self.embedding = frozen_embedding(table)
        if config.train_embeddings_dims > config.embedding_dims:
            raise ConfigError(f"train_embeddings_dims {config.train_embeddings_dims} is more than the word vectors' "
                              f"{config.embedding_dims} dimensions")
        if config.finetune_words:
            self.register_buffer("delta_rows", torch.zeros(config.vocab_size, dtype=torch.int64))
            self.delta = nn.Embedding(config.finetune_words + 1, config.train_embeddings_dims or config.embedding_dims,
                                      padding_idx=0)
            nn.init.zeros_(self.delta.weight)
        features = config.embedding_dims
        if config.casing_dims:
            self.casing = nn.Embedding(len(CASINGS), config.casing_dims, padding_idx=0)
            nn.init.uniform_(self.casing.weight, -0.5, 0.5, generator=gen)
            with torch.no_grad():
                self.casing.weight[0].zero_()
            features += config.casing_dims
        if char_cnn_on(config) or char_lstm_on(config):
            self.char_embedding = nn.Embedding(config.num_chars, config.char_dims, padding_idx=0)
            nn.init.uniform_(self.char_embedding.weight, -0.5, 0.5, generator=gen)
            with torch.no_grad():
                self.char_embedding.weight[0].zero_()
        if char_cnn_on(config):
            self.char_cnn = nn.Conv1d(config.char_dims, config.char_filters, config.char_width,
                                      padding=config.char_width // 2)
            features += config.char_filters
        if char_lstm_on(config):
            self.char_lstm = nn.LSTM(config.char_dims, config.char_units, batch_first=True, bidirectional=True)
            features += 2 * config.char_units
        H = config.units
        if config.cell == "rnn":
            self.rnn = SimpleRNN(features, H, gen)
            self.rnn_backward = SimpleRNN(features, H, gen) if config.bidirectional else None
        else:
            cls = nn.LSTM if config.cell == "lstm" else nn.GRU
            self.rnn = cls(features, H, batch_first=True, bidirectional=config.bidirectional)
        D = 2 if config.bidirectional else 1
        # layers 2..n (an empty ModuleList has no weights: one-layer folders keep their keys and initial weights)
        self.upper = nn.ModuleList(cls(D * H, H, batch_first=True, bidirectional=config.bidirectional)
                                   for _ in range(config.layers - 1))
        self.dropout = nn.Dropout(config.dropout) if config.dropout_mode == "standard" \
            else VariationalDropout(config.dropout)
        self.dense = nn.Linear(D * H, config.num_tags)
        if config.crf:
            from torchcrf import CRF

            self.crf = CRF(config.num_tags, batch_first=True)
        K = config.num_tags  # what the tag scheme allows (`constrain`); not saved: the task sets it from tag names
        self.register_buffer("allowed_start", torch.ones(K, dtype=torch.bool), persistent=False)
        self.register_buffer("allowed_transitions", torch.ones(K, K, dtype=torch.bool), persistent=False)
        self.register_buffer("allowed_end", torch.ones(K, dtype=torch.bool), persistent=False)

    def constrain(self, start, transitions, end) -> None:
        """Make CRF decoding avoid what the tag scheme forbids: boolean masks start (K,), transitions
        (K, K) [from, to] and end (K,), True = allowed (loopynet.tasks.tagging.constraints)."""
        device = self.allowed_start.device
        self.allowed_start.copy_(torch.as_tensor(start, device=device))
        self.allowed_transitions.copy_(torch.as_tensor(transitions, device=device))
        self.allowed_end.copy_(torch.as_tensor(end, device=device))

    def step_inputs(self, words, cases, chars) -> torch.Tensor:
        """(B, T, features): word vector ++ casing embedding ++ char-CNN features ++ char-LSTM final states."""
        parts = [self.embedding(words)]
        if self.config.finetune_words:
            delta = self.delta(self.delta_rows[words])  # (B, T, D): the first D dims get the correction
            D = delta.shape[-1]
            parts[0] = torch.cat([parts[0][..., :D] + delta, parts[0][..., D:]], dim=-1) if D < parts[0].shape[-1] \
                else parts[0] + delta
        if self.config.casing_dims:
            parts.append(self.casing(cases))
        if char_cnn_on(self.config):
            B, T, L = chars.shape
            c = self.char_embedding(chars.view(B * T, L)).transpose(1, 2)  # (B*T, C, L)
            c = self.char_cnn(c)  # (B*T, F, L)
            c = c.masked_fill((chars.view(B * T, 1, L) == 0), float("-inf")).amax(dim=2)
            c = torch.where(torch.isinf(c), torch.zeros_like(c), c)  # padding tokens: no characters
            parts.append(c.view(B, T, -1))
        if char_lstm_on(self.config):
            parts.append(self.char_states(chars))
        return torch.cat(parts, dim=-1)

    def char_states(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (B, T, L) int64 (0 = padding, at the end of each token) -> (B, T, 2U): each token's character
        BiLSTM final states, forward (after its last character) ++ backward (after its first); zeros for
        padding tokens (Lample et al. 2016, sec. 2.2; `char_encoder` "lstm"). No data-dependent shapes, so
        ONNX export traces it: padding tokens run as one-character tokens and are zeroed afterwards."""
        B, T, L = chars.shape
        flat = chars.reshape(B * T, L)
        n = (flat != 0).sum(dim=1)  # (B*T,) characters per token
        steps = recurrent_outputs(self.char_lstm, self.char_embedding(flat), n.clamp(min=1))  # (B*T, L, 2U)
        U = self.config.char_units
        last = steps.gather(1, (n.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, 2 * U))[:, 0, :U]  # forward
        states = torch.cat([last, steps[:, 0, U:]], dim=1) * (n > 0).unsqueeze(1).to(steps.dtype)  # ++ backward
        return states.reshape(B, T, 2 * U)

    def forward(self, words, cases, chars, lengths) -> torch.Tensor:
        """words, cases (B, T) int64, chars (B, T, L) int64, lengths (B,) int64 -> emissions (B, T, K)."""
        if self.training and self.config.word_dropout > 0:
            drop = (torch.rand(words.shape, device=words.device) < self.config.word_dropout) & (words > 1)
            words = torch.where(drop, torch.ones_like(words), words)  # 1 = <unk>
        return self.forward_vectors(self.step_inputs(words, cases, chars), lengths)

    def embed(self, words, cases, chars) -> torch.Tensor:
        """The per-step input vectors (B, T, features) the RNN reads: `step_inputs` (no word dropout)."""
        return self.step_inputs(words, cases, chars)

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, features) per-step input vectors (e.g. `embed(...)`), lengths (B,) int64 -> emissions
        (B, T, K); = forward(words, cases, chars, lengths) for x = embed(words, cases, chars) in eval mode."""
        x = self.dropout(x)
        if self.config.cell == "rnn":
            out, _ = self.rnn(x)
            if self.rnn_backward is not None:
                back, _ = self.rnn_backward(reverse_within_length(x, lengths))
                out = torch.cat([out, reverse_within_length(back, lengths)], dim=-1)
        else:
            out = recurrent_outputs(self.rnn, x, lengths)
            for rnn in self.upper:
                out = recurrent_outputs(rnn, self.dropout(out), lengths)
        return self.dense(self.dropout(out))

    @staticmethod
    def mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
        return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)

    def loss_from_emissions(self, emissions, tags, lengths) -> torch.Tensor:
        """Loss summed over the real tokens (CRF: the sentences' negative log-likelihoods), / B."""
        mask = self.mask(lengths, emissions.shape[1])
        if self.config.crf:
            return -self.crf(emissions, tags, mask=mask, reduction="sum") / emissions.shape[0]
        return F.cross_entropy(emissions[mask], tags[mask], reduction="sum") / emissions.shape[0]

    @torch.no_grad()
    def decode_emissions(self, emissions, lengths) -> list[list[int]]:
        """Best tag ids per sentence (CRF: Viterbi; else argmax per step), each of its real length."""
        if self.config.crf:
            forbid = lambda allowed: torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, float("-inf"))  # noqa: E731
            return constrained_viterbi(emissions, lengths, self.crf.start_transitions + forbid(self.allowed_start),
                                       self.crf.transitions + forbid(self.allowed_transitions),
                                       self.crf.end_transitions + forbid(self.allowed_end))
        best = emissions.argmax(-1)
        return [best[b, : int(n)].tolist() for b, n in enumerate(lengths)]


@torch.no_grad()
def constrained_viterbi(emissions: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor,
                        transitions: torch.Tensor, end: torch.Tensor) -> list[list[int]]:
    """The highest-scoring tag sequence of each sentence under a linear-chain CRF (Lafferty et al. 2001;
    Viterbi 1967): score(y) = start[y_1] + sum_t emissions[t, y_t] + sum_t transitions[y_(t-1), y_t]
    + end[y_n]. A score of -inf makes a tag or transition impossible (the scheme's constraints).

    emissions (B, T, K), lengths (B,) int: sentence b uses steps [0, lengths[b]); a length of 0
    decodes to []. Returns one list of tag ids per sentence, of its length.
    """
    B, T, K = emissions.shape
    emissions = emissions.float()
    score = start + emissions[:, 0]  # (B, K): best score of a path ending in each tag at step 0
    history = []
    for t in range(1, T):
        candidates = score.unsqueeze(2) + transitions.unsqueeze(0)  # (B, K from, K to)
        best, index = candidates.max(dim=1)  # (B, K)
        running = (t < lengths).unsqueeze(1)
        score = torch.where(running, best + emissions[:, t], score)
        history.append(index)
    score = score + end
    paths = []
    for b in range(B):
        n = int(lengths[b])
        if n == 0:
            paths.append([])
            continue
        tag = int(score[b].argmax())
        path = [tag]
        for t in range(n - 1, 0, -1):
            tag = int(history[t - 1][b, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths
