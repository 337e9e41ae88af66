"""Per-request samplers: a llama.cpp chain, plus a JSON grammar checked only when it must be."""

from __future__ import annotations

import ctypes
import math

import llama_cpp as llc
import numpy as np

from models.engine.base import GenerationParams
from models.engine.grammar import schema_grammar
from models.errors import InvalidRequest

PENALTY_LAST_N = 64
GRAMMAR_SHORTLISTS = (128, 4096)  # a refused pick is retried among the likeliest tokens first
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llc.llama_token_data)


def _chain(params: GenerationParams, n_vocab: int) -> int:
    """The sampler chain without the grammar: penalties, truncation, temperature, pick."""
    chain = llc.llama_sampler_chain_init(llc.llama_sampler_chain_default_params())
    if _penalised(params):
        llc.llama_sampler_chain_add(
            chain,
            llc.llama_sampler_init_penalties(
                n_vocab,
                PENALTY_LAST_N,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            ),
        )
    if params.temperature <= 0:
        llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_greedy())
        return chain
    if params.top_k > 0:
        llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_top_p(params.top_p, 1))
    if params.min_p > 0:
        llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_min_p(params.min_p, 1))
    llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_temp(params.temperature))
    seed = llc.LLAMA_DEFAULT_SEED if params.seed is None else params.seed & 0xFFFFFFFF
    llc.llama_sampler_chain_add(chain, llc.llama_sampler_init_dist(seed))
    return chain


def _penalised(params: GenerationParams) -> bool:
    return bool(params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1)


class Sampler:
    """Picks one request's next token.

    Without a grammar this is llama.cpp's own chain, except plain greedy (no penalties), which
    takes the first largest logit straight from the logits as llama.cpp's greedy sampler would,
    without first copying the vocabulary into a candidate array (~90 µs a token here). With a
    grammar, the chain samples first and the grammar checks only the token picked (llama.cpp's
    common sampler does the same). When that token is refused, the grammar filters the 128 (then
    4,096) likeliest tokens and the chain samples among those allowed; only when none is allowed
    does the whole vocabulary go through the grammar. Greedy decoding gives exactly the
    full-vocabulary answer (the likeliest allowed token is in the shortlist whenever any is);
    sampling is truncated to the shortlist's allowed tokens, as top-k would. A constrained
    request so costs its neighbours on the decode thread little more than a free one.
    """

    def __init__(self, params: GenerationParams, vocab: llc.llama_vocab_p, n_vocab: int) -> None:
        self.grammar = 0
        if params.json_schema is not None:
            text = schema_grammar(params.json_schema)  # bounded and cached; may raise
            self.grammar = llc.llama_sampler_init_grammar(vocab, text.encode(), b"root")
            if not self.grammar:
                raise InvalidRequest(
                    "response_format could not be turned into a grammar llama.cpp accepts",
                    "response_format",
                )
        self.chain = _chain(params, n_vocab)
        self._n_vocab = n_vocab
        # plain greedy is the first largest logit, as llama.cpp's greedy sampler picks it, but
        # without copying the vocabulary into a candidate array first (~90 µs a token here)
        self._argmax = params.temperature <= 0 and not _penalised(params) and not self.grammar
        self._cur = np.zeros(n_vocab if self.grammar else 0, dtype=_TOKEN_DATA)
        self._ids = np.arange(n_vocab if self.grammar else 0, dtype=np.int32)
        self._one = np.zeros(1, dtype=_TOKEN_DATA)

    def sample(self, ctx: llc.llama_context_p, index: int) -> int:
        """The next token from the logits at batch row `index` (and accept it)."""
        if self._argmax:
            return int(self._logits(ctx, index).argmax())
        if not self.grammar:
            return int(llc.llama_sampler_sample(self.chain, ctx, index))
        logits = self._logits(ctx, index)
        token = self._apply(logits, (self.chain,))
        self._one["id"], self._one["logit"] = token, 1.0
        self._apply_to(self._one, self.grammar)
        if math.isinf(float(self._one["logit"][0])):  # refused: the shortlist, then everything
            token = -1
            for size in GRAMMAR_SHORTLISTS:
                token = self._shortlisted(logits, size)
                if token >= 0:
                    break
            if token < 0:
                token = self._apply(logits, (self.grammar, self.chain))
        llc.llama_sampler_accept(self.grammar, token)
        llc.llama_sampler_accept(self.chain, token)
        return token

    def _logits(self, ctx: llc.llama_context_p, index: int) -> np.ndarray:
        return np.ctypeslib.as_array(llc.llama_get_logits_ith(ctx, index), (self._n_vocab,))

    def _apply(self, logits: np.ndarray, samplers: tuple[int, ...]) -> int:
        cur = self._cur
        cur["id"] = self._ids
        cur["logit"] = logits
        cur["p"] = 0.0
        array = self._array(cur)
        for sampler in samplers:
            llc.llama_sampler_apply(sampler, ctypes.byref(array))
        if array.selected < 0:
            raise InvalidRequest("no token satisfies the response format", "response_format")
        return int(cur["id"][array.selected])

    def _shortlisted(self, logits: np.ndarray, size: int) -> int:
        """The chain's pick among the `size` likeliest tokens the grammar allows; -1 if none."""
        size = min(size, self._n_vocab)
        top = np.argpartition(logits, -size)[-size:]
        cur = self._cur[:size]
        cur["id"] = top
        cur["logit"] = logits[top]
        cur["p"] = 0.0
        self._apply_to(cur, self.grammar)
        if not np.isfinite(cur["logit"]).any():
            return -1
        array = self._array(cur)
        llc.llama_sampler_apply(self.chain, ctypes.byref(array))
        return int(cur["id"][array.selected]) if array.selected >= 0 else -1

    def _apply_to(self, cur: np.ndarray, sampler: int) -> None:
        array = self._array(cur)
        llc.llama_sampler_apply(sampler, ctypes.byref(array))

    @staticmethod
    def _array(cur: np.ndarray) -> llc.llama_token_data_array:
        return llc.llama_token_data_array(
            data=cur.ctypes.data_as(ctypes.POINTER(llc.llama_token_data)),
            size=len(cur),
            selected=-1,
            sorted=False,
        )

    def free(self) -> None:
        """Release the llama.cpp samplers."""
        llc.llama_sampler_free(self.chain)
        if self.grammar:
            llc.llama_sampler_free(self.grammar)
