"""The sampler on real logits: plain greedy reads the logits and picks what llama.cpp would."""

from __future__ import annotations

import llama_cpp as llc
from llama_cpp import Llama

from models.catalog import DEFAULT_MODEL
from models.engine import GenerationParams
from models.engine.sampling import Sampler

TEXT = (
    "The lighthouse keeper climbed the stairs at dusk, counted the ships on the horizon and "
    "wrote each name in the log: Marigold, Northern Star, Persistence, and a grey trawler "
    "with no name at all."
)


def test_plain_greedy_picks_what_llama_cpps_greedy_sampler_picks() -> None:
    """Every row of a real prompt: the argmax shortcut equals llama.cpp's own greedy sampler,
    and a penalised greedy request still goes through llama.cpp's chain (its pick can differ)."""
    llm = Llama(
        str(DEFAULT_MODEL.gguf_path()), n_ctx=256, n_batch=256, logits_all=True, verbose=False
    )
    try:
        tokens = llm.tokenize(TEXT.encode())
        assert len(tokens) > 30
        llm.eval(tokens)
        vocab = llc.llama_model_get_vocab(llm.model)
        ours = Sampler(GenerationParams(temperature=0), vocab, llm.n_vocab())
        theirs = llc.llama_sampler_init_greedy()
        try:
            picks = [ours.sample(llm.ctx, row) for row in range(len(tokens))]
            expected = [
                llc.llama_sampler_sample(theirs, llm.ctx, row) for row in range(len(tokens))
            ]
        finally:
            llc.llama_sampler_free(theirs)
            ours.free()
        assert picks == expected
        assert len(set(picks)) > 10  # real, varied rows, not one repeated answer
    finally:
        llm.close()
