"""A decoder that spells characters from an initial state: teacher-forced for training, greedy or beam
search for evaluation. The step loop is ``rnnexp.models.seq2seq.decode``, shared with sine forecasting."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rnnexp.data.vocab import PairVocabulary
from rnnexp.models.recurrent import Hidden, RecurrentSpec
from rnnexp.models.seq2seq import RecurrentDecoder, as_hidden, decode, hidden_parts


def reorder_hidden(hidden: Hidden, index: torch.Tensor) -> Hidden:
    """The state of the sequences ``index`` picks (batch is dimension 1 of every part)."""
    return as_hidden([part.index_select(1, index) for part in hidden_parts(hidden)])


def mask_after_end(ids: torch.Tensor, end_id: int, pad_id: int) -> torch.Tensor:
    """``ids (batch, steps)`` with every position after the first ``end_id`` of its row set to ``pad_id``."""
    ended_before = (ids == end_id).long().cumsum(dim=1) - (ids == end_id).long()  # ends strictly before
    return ids.masked_fill(ended_before > 0, pad_id)


class CharDecoder(nn.Module):
    """Embedding -> unidirectional recurrent decoder (the ``model`` cell) -> logits over the vocabulary.

    Every output starts from ``<start>``; step t+1 reads the embedding of step t's character (the true one
    under teacher forcing, else the decoder's own choice). Shapes: states ``(layers, batch, hidden)`` (a pair
    for LSTM), targets and outputs ``(batch, steps)`` ids, logits ``(batch, steps, vocab)``.
    """

    def __init__(self, spec: RecurrentSpec, vocab: PairVocabulary, embedding_dim: int):
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(len(vocab), embedding_dim, padding_idx=vocab.pad_id)
        self.rnn = RecurrentDecoder(spec, embedding_dim, len(vocab))

    def start(self, batch: int, device: torch.device) -> torch.Tensor:
        """The embedded ``<start>`` token of every sequence, ``(batch, 1, embedding_dim)``."""
        return self.embedding(torch.full((batch, 1), self.vocab.start_id, device=device))

    def feed_choice(self, logits: torch.Tensor) -> torch.Tensor:
        """A step's logits ``(batch, 1, vocab)`` -> the embedding of its likeliest character."""
        return self.embedding(logits.argmax(dim=-1))

    def teacher_forced(
        self,
        state: Hidden,
        target: torch.Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Logits for every step of ``target`` (ids ending with ``<end>``, padded); with a ratio below 1
        some steps read the decoder's own previous choice instead of the truth."""
        return decode(
            self.rnn,
            start=self.start(target.shape[0], target.device),
            state=state,
            steps=target.shape[1],
            next_input=self.feed_choice,
            teacher_inputs=self.embedding(target),
            teacher_forcing=teacher_forcing,
            generator=generator,
        )

    def greedy(self, state: Hidden, max_length: int) -> torch.Tensor:
        """The likeliest character at every step, ``(batch, max_length)``, ``<pad>`` after ``<end>``. The
        truth is never an argument: the decoder reads only its own choices."""
        batch = hidden_parts(state)[0].shape[1]
        device = hidden_parts(state)[0].device
        logits = decode(self.rnn, self.start(batch, device), state, max_length, next_input=self.feed_choice)
        return mask_after_end(logits.argmax(dim=-1), self.vocab.end_id, self.vocab.pad_id)

    def beam_search(self, state: Hidden, max_length: int, beam_size: int) -> torch.Tensor:
        """The likeliest output of ``beam_size`` candidates kept per sequence (summed log-probabilities),
        ``(batch, max_length)`` padded after ``<end>``. A candidate that has said ``<end>`` stays as it is;
        the search stops when every candidate has ended or at ``max_length``. ``beam_size=1`` is greedy."""
        vocab, pad, end = len(self.vocab), self.vocab.pad_id, self.vocab.end_id
        batch = hidden_parts(state)[0].shape[1]
        device = hidden_parts(state)[0].device
        k = beam_size
        state = reorder_hidden(state, torch.arange(batch, device=device).repeat_interleave(k))
        scores = torch.full((batch, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live candidate at first, so the k start copies do not fill the beam
        step_input = self.start(batch * k, device)
        finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
        ended_row = torch.full((vocab,), float("-inf"), device=device)
        ended_row[pad] = 0.0  # an ended candidate can only be continued by <pad>, at no cost
        history = torch.empty(batch, k, 0, dtype=torch.long, device=device)
        for _ in range(max_length):
            logits, state = self.rnn(step_input, state)  # (batch * k, 1, vocab)
            log_probs = F.log_softmax(logits[:, 0].float(), dim=-1)
            log_probs = torch.where(finished[:, None], ended_row, log_probs)
            total = (scores.reshape(-1, 1) + log_probs).view(batch, k * vocab)
            scores, flat = total.topk(k, dim=1)  # (batch, k), best first
            beam, token = flat // vocab, flat % vocab
            rows = (torch.arange(batch, device=device)[:, None] * k + beam).reshape(-1)
            state = reorder_hidden(state, rows)
            history = torch.cat(
                [history.gather(1, beam[..., None].expand(-1, -1, history.shape[2])), token[..., None]], 2
            )
            finished = finished[rows] | (token.reshape(-1) == end)
            if bool(finished.all()):
                break
            step_input = self.embedding(token.reshape(-1, 1))
        best = history[:, 0]
        return F.pad(best, (0, max_length - best.shape[1]), value=pad)

    def generate(self, state: Hidden, max_length: int, beam_size: int = 1) -> torch.Tensor:
        """Greedy (``beam_size=1``, one batched loop) or beam search: ids ``(batch, max_length)``."""
        if beam_size == 1:
            return self.greedy(state, max_length)
        return self.beam_search(state, max_length, beam_size)
