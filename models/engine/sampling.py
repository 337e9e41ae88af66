"""Per-request llama.cpp sampler chains built from GenerationParams."""

from __future__ import annotations

import llama_cpp as llc

from models.engine.base import GenerationParams
from models.errors import InvalidRequest

PENALTY_LAST_N = 64


def build_sampler(params: GenerationParams, vocab: llc.llama_vocab_p, n_vocab: int) -> int:
    """Create a sampler chain for one request; the caller frees it with llama_sampler_free."""
    chain = llc.llama_sampler_chain_init(llc.llama_sampler_chain_default_params())
    if params.grammar:
        grammar = llc.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not grammar:
            llc.llama_sampler_free(chain)
            raise InvalidRequest(
                "response_format could not be turned into a grammar llama.cpp accepts",
                "response_format",
            )
        llc.llama_sampler_chain_add(chain, grammar)
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
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
