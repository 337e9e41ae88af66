"""The small interface between the server and an LLM engine."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "cancelled", "error", "timeout"]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and stopping settings for one request, independent of any HTTP protocol."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    json_schema: str | None = None  # canonical JSON Schema text the output must match
    logprobs: int | None = None  # None: off; k in 0..20: the chosen token's and the top k's


FlashAttn = Literal["auto", "on", "off"]
KvType = Literal["f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"]


@dataclass(frozen=True)
class EngineConfig:
    """How a model is run: context, shared KV cache, parallel slots, batch size, queue, threads."""

    n_ctx: int | None = None  # per request; None: all a slot may hold, within the trained context
    ctx_size: int | None = None  # KV cells in all (llama-server's -c); None: 2,048 per slot
    kv_unified: bool = False  # one cache all slots share, instead of ctx_size / parallel each
    cache_type_k: KvType = "f16"  # how K cells are stored (llama-server's -ctk)
    cache_type_v: KvType = "f16"  # how V cells are stored (-ctv; quantised needs flash attention)
    flash_attn: FlashAttn = "auto"  # llama-server's -fa: auto lets llama.cpp decide per backend
    parallel: int = 8
    n_batch: int = 512
    max_queue: int = 64
    n_threads: int | None = None
    n_gpu_layers: int = 0
    prefix_cache: bool = True
    max_tokens_default: int = 512
    watchdog_s: float = 60.0
    speculative: bool = False  # prompt-lookup drafts for greedy requests
    draft_tokens: int = 4  # the most draft tokens per slot and step
    draft_step_rows: int = 4  # drafts fill a step up to this many rows (none while prefilling)
    host_cache_mib: int = 256  # host RAM for KV of sequences that left their slot (0: off)
    kv_on_demand: bool = True  # hand the zero-filled KV pages back: resident once written

    def __post_init__(self) -> None:
        if self.n_batch < self.parallel:
            raise ValueError(
                f"n_batch ({self.n_batch}) must be at least parallel ({self.parallel}): every "
                "running request decodes one token per step"
            )


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability (before sampling) and the likeliest alternatives."""

    token: str
    bytes: bytes
    logprob: float
    top: tuple[tuple[str, builtins.bytes, float], ...] = ()  # (token, bytes, logprob), best first


@dataclass(frozen=True)
class Piece:
    """A piece of generated text (one or more tokens), with their logprobs when asked for."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finish:
    """The end of a generation, with its reason and token counts."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    error: str | None = None
    queued_s: float = 0.0  # submitted -> admitted to a slot (or -> dropped while waiting)
    stop_sequence: str | None = None  # the stop string that ended it (None: EOS, length, ...)


@dataclass
class EngineStats:
    """Counters and gauges an engine exposes for monitoring."""

    running: int = 0
    waiting: int = 0
    kv_cells_used: int = 0
    kv_cells_total: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    requests_finished: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    decode_steps: int = 0  # llama_decode calls that succeeded
    decode_tokens: int = 0  # tokens in those batches (generated and prefilled)
    drafted_tokens: int = 0  # prompt-lookup draft tokens verified
    accepted_tokens: int = 0  # draft tokens the model agreed with
    shared_prefix_tokens: int = 0  # prompt tokens whose cells another slot shared
    host_cache_tokens: int = 0  # prompt tokens restored from the host-RAM prompt cache
    moved_sequences: int = 0  # running requests moved to close a gap between running slots
    host_cache_bytes: int = 0
    host_cache_entries: int = 0


class TokenStream(Protocol):
    """Async stream of one request's pieces, ending with a Finish."""

    def __aiter__(self) -> AsyncIterator[Piece | Finish]: ...

    async def __anext__(self) -> Piece | Finish: ...

    def cancel(self) -> None:
        """Drop the request at the engine's next step (no-op once finished)."""
        ...


class Engine(Protocol):
    """Submit a request, get an async stream of text pieces ending in a Finish, cancel it."""

    model_id: str
    n_ctx: int
    file_sha256: str

    def info(self) -> dict[str, Any]:
        """Static facts about the loaded model (file, size, context, settings)."""
        ...

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """Render chat messages (and OpenAI-style tools, when the template knows them) with the
        model's template and tokenize them (message text is never parsed for control tokens).
        Slow for long prompts: call it off the event loop."""
        ...

    def supports_tools(self) -> bool:
        """True when the model's chat template renders a `tools` list."""
        ...

    def text_prompt(self, text: str) -> list[int]:
        """Tokenize a completion prompt (plain text, BOS as the model wants)."""
        ...

    def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids; InvalidRequest (param `tokens`) for an id outside the vocab."""
        ...

    async def submit(
        self, prompt_tokens: list[int], params: GenerationParams, n: int = 1
    ) -> Sequence[TokenStream]:
        """Queue n generations of one prompt (sharing its prefill); raises ContextLengthExceeded,
        QueueFull, InvalidRequest or EngineUnavailable at once."""
        ...

    def stalled_for(self) -> float:
        """Seconds the worker has made no progress while work is pending (0 when healthy)."""
        ...

    def stats(self) -> EngineStats:
        """A snapshot of the engine's counters and gauges."""
        ...

    def close(self) -> None:
        """Stop the worker and free llama.cpp memory."""
        ...
